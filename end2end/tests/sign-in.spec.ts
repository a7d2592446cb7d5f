import { test, expect } from '@playwright/test';

const email = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const password = process.env.KEYWARD_E2E_PASSWORD ?? '';

test.beforeAll(() => {
  expect(password, 'KEYWARD_E2E_PASSWORD is set by scripts/test.sh').not.toBe('');
});

test('the Owner signs in, the page hydrates, and signs out', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('heading', { name: 'Sign in to Keyward' })).toBeVisible();

  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');

  // This button is disabled in the server's HTML and only works once the wasm bundle
  // has hydrated the page.
  const toggle = page.getByRole('button', { name: 'Show session details' });
  await expect(toggle).toBeEnabled();
  await expect(page.getByText('Ends at the latest')).toBeHidden();
  await toggle.click();
  await expect(page.getByText('Ends at the latest')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Hide session details' })).toHaveAttribute('aria-expanded', 'true');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);

  // No CSP violation or hydration error along the way.
  expect(errors).toEqual([]);
});

test('a wrong password shows the generic error', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Incorrect email or password.');
  await expect(page).toHaveURL(/\/login/);

  // An unknown user gets exactly the same message.
  await page.getByLabel('Email').fill('nobody@example.com');
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Incorrect email or password.');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('sign-in, the overview and sign-out work as plain form posts', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('Incorrect email or password.');
    // The email as typed, the password box empty: only the password is typed again.
    await expect(page.getByLabel('Email')).toHaveValue(email);
    await expect(page.getByLabel('Password')).toHaveValue('');

    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
  });
});

test('signing in returns to the page that was asked for', async ({ page }) => {
  await page.goto('/keys?status=active');
  await expect(page).toHaveURL(/\/login\?next=%2Fkeys%3Fstatus%3Dactive$/);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/keys\?status=active$/);
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
});

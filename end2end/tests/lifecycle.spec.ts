import { test, expect, Page } from '@playwright/test';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';
const adminPassword = 'admin-' + Math.random().toString(36).slice(2) + '-pass';

async function signIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

async function newKeysWait(page: Page, wait: boolean) {
  await page.goto('/settings');
  await page.getByLabel('New keys').selectOption(wait ? 'required' : 'off');
  await page.getByRole('button', { name: 'Save key settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Key settings saved.' })).toBeVisible();
}

test('with approval required, a new key waits on /approvals until an administrator approves it', async ({ page, baseURL }) => {
  test.setTimeout(60_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, ownerEmail, ownerPassword);
  await page.goto('/users');
  await page.getByLabel('Email', { exact: true }).fill('alma@example.com');
  await page.getByLabel('Name', { exact: true }).fill('Alma Admin');
  await page.getByLabel('Password (12 to 128 characters)').fill(adminPassword);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Admin' });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();
  await page.goto('/apps');
  await page.getByLabel('App name').fill('Ledger');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();

  await newKeysWait(page, true);
  try {
    await page.goto('/keys');
    await page.getByRole('button', { name: 'Create key…' }).click();
    await page.getByLabel('Key name').fill('ledger sync');
    await page.getByLabel('App', { exact: true }).selectOption({ label: 'Ledger' });
    await page.getByRole('button', { name: 'Create key', exact: true }).click();
    const secret = (await page.locator('#new-secret').textContent())!.trim();
    await expect(page.getByText('This key waits for approval')).toBeVisible();
    const whoami = () =>
      fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    let r = await whoami();
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('key_pending');
    // Its owner finds it in no queue of theirs.
    await page.goto('/approvals');
    await expect(page.getByText('No keys are waiting.')).toBeVisible();
    await signOut(page);

    // The administrator sees it from the overview and approves it.
    await signIn(page, 'alma@example.com', adminPassword);
    await expect(page.getByText('1 new key is waiting for your approval')).toBeVisible();
    await page.getByRole('link', { name: 'Open the approval queue' }).first().click();
    const card = page.getByRole('region', { name: /ledger sync/ });
    await expect(card.getByText(ownerEmail)).toBeVisible();
    await card.getByRole('button', { name: /^Approve key_/ }).click();
    await expect(page.getByRole('status').filter({ hasText: 'approved: it works from now on' })).toBeVisible();
    await expect(page.getByText('No keys are waiting.')).toBeVisible();
    r = await whoami();
    expect(r.status).toBe(200);
    await signOut(page);
  } finally {
    await signIn(page, ownerEmail, ownerPassword);
    await newKeysWait(page, false);
  }
  expect(errors).toEqual([]);
});

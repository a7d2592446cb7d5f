import { test, expect } from '@playwright/test';

const email = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const password = process.env.KEYWARD_E2E_PASSWORD ?? '';

test('disabling a user asks first, and the skip link reaches the page after hydration', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await page.goto('/users');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');

  // The first Tab reaches "Skip to content"; following it, the next Tab is inside the
  // page's content, not the navigation.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => !!document.activeElement?.closest('main'))).toBe(true);

  await page.getByLabel('Email', { exact: true }).fill('dora@example.com');
  await page.getByLabel('Name', { exact: true }).fill('Dora Developer');
  await page.getByLabel('Password (12 to 128 characters)').fill('dora-' + Math.random().toString(36).slice(2) + '-pass');
  await page.getByRole('combobox', { name: 'Role', exact: true }).selectOption({ label: 'Developer' });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: 'dora@example.com' });

  // One click only asks; Escape leaves them as they were and gives the focus back.
  const opener = row.getByRole('button', { name: 'Disable dora@example.com…' });
  await opener.click();
  const dialog = page.getByRole('dialog', { name: 'Disable dora@example.com?' });
  await expect(dialog).toContainText('signed out everywhere');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
  await expect(row).toContainText('Active');
  await opener.click();
  await dialog.getByRole('button', { name: 'Disable dora@example.com', exact: true }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('status').filter({ hasText: 'Status changed.' })).toBeVisible();
  await expect(row).toContainText('Disabled');
  // Enabling again is one click.
  await row.getByRole('button', { name: 'Enable dora@example.com' }).click();
  await expect(row).toContainText('Active');
  expect(errors).toEqual([]);
});

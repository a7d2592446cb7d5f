import { test, expect } from '@playwright/test';
import { signInFromLoginPage } from './owner';

// The four channel policies are four forms of one action: a wrong password is named
// beside the password field of the form that sent it, and only there, also after the
// settings are drawn again with the answer.
test('a wrong password on one channel policy is shown beside that form only', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/login');
  await signInFromLoginPage(page);
  await page.goto('/settings');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await page.locator('#ch-sms-sudo-password').fill('certainly not the password');
  await page.getByRole('button', { name: 'Save the SMS policy' }).click();
  await expect(page.locator('#ch-sms-sudo-error')).toHaveText('Incorrect password.');
  await expect(page.locator('#ch-sms-sudo-password')).toHaveAttribute('aria-invalid', 'true');
  for (const other of ['email', 'rcs', 'whatsapp']) {
    await expect(page.locator(`#ch-${other}-sudo-error`)).toHaveCount(0);
    await expect(page.locator(`#ch-${other}-sudo-password`)).not.toHaveAttribute('aria-invalid', 'true');
  }
  expect(errors, errors.join('\n')).toEqual([]);
});

// A refused save of a long form says why beside the field and next to the button that
// was pressed, not only at the top of the form, out of sight.
test('a refused General save names the field beside it and answers by the button', async ({ page }) => {
  await page.goto('/login');
  await signInFromLoginPage(page);
  await page.goto('/settings');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  const networks = page.getByLabel('Panel network allow-list');
  await networks.fill('not a network');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.locator('#networks-error')).toContainText('not a network');
  await expect(networks).toHaveAttribute('aria-invalid', 'true');
  await expect(networks).toHaveValue('not a network');
  // The keyboard is at the field to fix; the answer by the button says why too.
  await expect(networks).toBeFocused();
  await expect(page.locator('#general-title ~ form .alert-error')).toContainText('not a network');
  // Fixed and saved: the error goes, the confirmation is where the button is.
  await networks.fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Settings saved.' })).toBeInViewport();
  await expect(page.locator('#networks-error')).toHaveCount(0);
});

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

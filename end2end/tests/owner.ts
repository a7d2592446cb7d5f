import { expect, type Page } from '@playwright/test';

// The Owner that scripts/e2e.sh creates, and signing in as them through the form.
export const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
export const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';

/** Signs the Owner in from the sign-in page (already open) and waits for the overview. */
export async function signInFromLoginPage(page: Page) {
  await page.getByLabel('Email').fill(ownerEmail);
  await page.getByLabel('Password').fill(ownerPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';

test('the audit log filters, verifies its chain and downloads the filtered events as CSV', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/login');
  await page.getByLabel('Email').fill(ownerEmail);
  await page.getByLabel('Password').fill(ownerPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
  const table = page.locator('table.audit-table');
  await expect(table.getByRole('row').filter({ hasText: 'auth.sign_in' }).first()).toBeVisible();

  // Filter: sign-in steps that succeeded.
  const filters = page.getByRole('search', { name: 'Filter events' });
  await filters.getByLabel('Action').fill('auth.');
  await filters.getByLabel('Outcome').selectOption('success');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=auth\.&.*outcome=success/);
  const body = table.locator('tbody tr');
  await expect(body.first()).toBeVisible();
  for (const row of await body.all()) {
    await expect(row).toContainText('auth.');
    await expect(row).toContainText('success');
  }

  // The chain, on request.
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await expect(page.locator('#chain-state')).toContainText('Intact: all');
  // The filters survive the walk.
  await expect(filters.getByLabel('Action')).toHaveValue('auth.');

  // The download holds the filtered events.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download these events as CSV' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^keyward-audit-\d{8}\.csv$/);
  const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('seq,time_utc,actor_type,actor,action,target,ip,user_agent,outcome,details');
  expect(csv.length).toBeGreaterThan(1);
  for (const line of csv.slice(1)) expect(line).toMatch(/,auth\.[a-z_]+,.*,success,/);

  // A filter the server refuses is shown beside its field, and what was typed stays.
  await filters.getByLabel('Address').fill('not-an-address');
  await filters.getByRole('button', { name: 'Filter' }).click();
  const ip = page.getByRole('search', { name: 'Filter events' }).getByLabel('Address');
  await expect(ip).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('#f-ip-error')).toContainText('IPv4 or IPv6');
  await expect(ip).toHaveValue('not-an-address');
  expect(errors).toEqual([]);
});

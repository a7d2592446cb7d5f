import { test, expect, Page } from '@playwright/test';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';
const auditorPassword = 'auditor-' + Math.random().toString(36).slice(2) + '-pass';

async function signIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

test('an admin makes an Auditor role in the matrix; its holder sees and may do only that', async ({ page, baseURL }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  await signIn(page, ownerEmail, ownerPassword);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Roles' }).click();
  await expect(page.getByRole('heading', { name: 'Roles', level: 1 })).toBeVisible();

  // Create the role without permissions, then give it audit.view in the matrix.
  await page.getByLabel('Name', { exact: true }).fill('Auditor');
  await page.getByRole('button', { name: 'Create role' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Role created.' })).toBeVisible();
  const cell = page.getByRole('checkbox', { name: 'Auditor: audit.view', exact: true });
  await expect(cell).not.toBeChecked();
  // Built-in roles are read-only.
  await expect(page.getByRole('checkbox', { name: 'Viewer: audit.view' })).toBeDisabled();
  await cell.check();
  await page.getByRole('button', { name: 'Save permissions' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved. 1 role(s) changed.' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('checkbox', { name: 'Auditor: audit.view', exact: true })).toBeChecked();
  await expect(page.getByRole('checkbox', { name: 'Auditor: user.manage' })).not.toBeChecked();

  // Give the role to a new user.
  await nav.getByRole('link', { name: 'Users' }).click();
  await expect(page.getByRole('heading', { name: 'Users', level: 1 })).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill('auditor@example.com');
  await page.getByLabel('Name', { exact: true }).fill('Audrey Auditor');
  await page.getByLabel('Password (12 to 128 characters)').fill(auditorPassword);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Auditor' });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: 'auditor@example.com' });
  await expect(row.getByLabel('Role of auditor@example.com')).toHaveValue(/\d+/);
  await expect(row).toContainText('Active');

  // Deleting a role that is assigned is refused with the count.
  await nav.getByRole('link', { name: 'Roles' }).click();
  await page.getByRole('button', { name: 'Delete Auditor' }).click();
  await expect(page.getByRole('alert')).toContainText('assigned to 1 user');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  // The auditor: the Overview and the audit log (its one permission) in the navigation.
  await signIn(page, 'auditor@example.com', auditorPassword);
  await expect(nav.getByRole('link')).toHaveText(['Overview', 'REST API', 'Audit log']);
  await expect(page.getByText('Auditor', { exact: true })).toBeVisible();
  await nav.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
  await expect(page.locator('table.audit-table')).toContainText('role.created');
  await page.goto('/roles');
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();

  // A forbidden action posted by hand, with the auditor's session cookie: 403.
  const res = await page.request.post('/fn/users/set_role', {
    headers: { origin: baseURL! },
    form: { user_id: '1', role_id: '5' },
  });
  expect(res.status()).toBe(403);
  const res2 = await page.request.post('/fn/roles/create', {
    headers: { origin: baseURL! },
    form: { name: 'Sneaky' },
  });
  expect(res2.status()).toBe(403);

  // The refused delete (409) and the forbidden page (403) are logged by the browser as
  // failed loads; nothing else may be.
  expect(errors.filter((e) => !/status of (403|409)/.test(e))).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('roles are created and errors shown by plain form posts', async ({ page }) => {
    await signIn(page, ownerEmail, ownerPassword);
    await page.goto('/roles');
    await page.getByLabel('Name', { exact: true }).fill('Release managers');
    await page.getByRole('checkbox', { name: /^api\.key\.view — / }).check();
    await page.getByRole('button', { name: 'Create role' }).click();
    await expect(page).toHaveURL(/\/roles\??$/);
    await expect(page.getByRole('checkbox', { name: 'Release managers: api.key.view', exact: true })).toBeChecked();

    // The same name again: the error comes back with the page.
    await page.getByLabel('Name', { exact: true }).fill('release MANAGERS');
    await page.getByRole('button', { name: 'Create role' }).click();
    await expect(page.getByRole('alert')).toHaveText('A role with this name already exists.');
  });
});

import { test, expect, Page } from '@playwright/test';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';
const devPassword = 'dev-' + Math.random().toString(36).slice(2) + '-pass';

async function signIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

test('an owner makes the one RCS key and reveals it again; a Developer cannot make WhatsApp keys', async ({ page, baseURL }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, ownerEmail, ownerPassword);
  await page.goto('/apps');
  await page.getByLabel('App name').fill('Courier');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
  await page.goto('/users');
  await page.getByLabel('Email', { exact: true }).fill('devi@example.com');
  await page.getByLabel('Name', { exact: true }).fill('Devi Developer');
  await page.getByLabel('Password (12 to 128 characters)').fill(devPassword);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Developer' });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Channels' }).click();
  const rcs = page.getByRole('region', { name: 'RCS' });
  await expect(rcs.getByText(/at most 1 active for the whole deployment/)).toBeVisible();
  await rcs.locator('summary', { hasText: 'Create an RCS key' }).click();
  await rcs.getByLabel('Key name').fill('rcs sender');
  await rcs.getByLabel('App', { exact: true }).selectOption({ label: 'Courier' });
  await rcs.getByRole('button', { name: 'Create an RCS key' }).click();
  const secret = (await page.locator('#channel-secret').textContent())!.trim();
  expect(secret).toMatch(/^kw_live_/);
  // A channel key is refused outside its channel.
  const r = await fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
  expect(r.status).toBe(403);
  expect((await r.json()).error.code).toBe('channel_not_allowed');
  // Revealed again: the same secret.
  await page.reload();
  await rcs.getByLabel(/^Manage key_/).click();
  await rcs.getByRole('button', { name: /^Reveal key_/ }).click();
  await expect(page.getByRole('heading', { name: /^The secret of key_/ })).toBeVisible();
  await expect(page.locator('#channel-secret')).toHaveText(secret);
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signIn(page, 'devi@example.com', devPassword);
  await page.goto('/channels');
  await expect(page.getByRole('region', { name: 'Email' }).locator('summary', { hasText: 'Create an email key' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'WhatsApp' }).getByText('Create a WhatsApp key')).toHaveCount(0);
  // The RCS key is not theirs: listed to nobody but its owner and managers.
  await expect(page.getByRole('region', { name: 'RCS' }).getByText('rcs sender')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('an admin adds a sender number, sees its SMS key once, and an SMS goes out from it', async ({ page, baseURL }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, ownerEmail, ownerPassword);
  await page.goto('/apps');
  await page.getByLabel('App name').fill('Texts');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
  await page.goto('/channels');
  const sms = page.getByRole('region', { name: 'SMS' });
  await expect(sms.getByText(/One key per sender number/)).toBeVisible();
  // A number that cannot exist is refused with its reason.
  await sms.locator('summary', { hasText: 'Add a sender number' }).click();
  await sms.getByLabel('Number', { exact: true }).fill('+1 555');
  await sms.getByLabel('App', { exact: true }).selectOption({ label: 'Texts' });
  await sms.getByRole('button', { name: 'Add the number' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'not a phone number' })).toBeVisible();
  await sms.getByLabel('Number', { exact: true }).fill('+44 7911 123456');
  await sms.getByRole('button', { name: 'Add the number' }).click();
  const secret = (await page.locator('#channel-secret').textContent())!.trim();
  expect(secret).toMatch(/^kw_live_/);
  await expect(sms.getByRole('cell', { name: '+447911123456', exact: true })).toBeVisible();
  await expect(sms.getByRole('cell', { name: 'SMS +447911123456', exact: true })).toBeVisible();
  // The key sends from its own number only; the SMS lands in the development outbox.
  const apps = await (await fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } })).json();
  expect(apps.error.code).toBe('channel_not_allowed');
  await page.goto('/messages');
  await page.getByLabel('App', { exact: true }).selectOption({ label: 'Texts (needs approval)' });
  await page.getByLabel('Channel', { exact: true }).selectOption('sms');
  await expect(page.getByLabel('Send from (the app\'s sender numbers, Channels page)')).toBeVisible();
  await expect(page.getByLabel('Webhook URL (registered on the Apps page)')).toBeHidden();
  await page.getByLabel(/^Recipients/).fill('+905559876543');
  await page.getByLabel('Send from (the app\'s sender numbers, Channels page)').selectOption('+447911123456');
  await page.getByLabel('Message', { exact: true }).fill('Your parcel arrives today.');
  await page.getByRole('button', { name: 'Submit' }).click();
  await expect(page.getByText('Your parcel arrives today.').first()).toBeVisible();
  // Removing the number revokes its key at once.
  await page.goto('/channels');
  // A closed row holds no form; "Manage" draws its actions, and Remove asks first in a
  // modal dialog (Escape closes it and gives focus back to its opener).
  await expect(sms.locator('tr[id^="row-number-"]').filter({ hasText: '+447911123456' }).locator('form')).toHaveCount(0);
  await sms.getByLabel('Manage +447911123456', { exact: true }).click();
  const opener = sms.getByRole('button', { name: 'Remove +447911123456…' });
  await opener.click();
  const dialog = page.getByRole('dialog', { name: 'Remove +447911123456?' });
  await expect(dialog).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
  await opener.click();
  await dialog.getByLabel('I understand: its key will stop working.').check();
  await dialog.getByRole('button', { name: 'Remove +447911123456', exact: true }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Sender number removed' })).toBeVisible();
  await expect(dialog).toBeHidden();
  // The row went with its controls: focus is on the answer, not lost to the page.
  await expect(sms.locator('tr[id^="row-number-"]').filter({ hasText: '+447911123456' })).toHaveCount(0);
  await expect(page.getByRole('status').filter({ hasText: 'Sender number removed' })).toBeFocused();
  const r = await fetch(`${baseURL}/api/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: 1, channel: 'sms', from: '+447911123456', to: ['+905559876543'], body: 'x' }),
  });
  expect(r.status).toBe(401);
  expect(errors).toEqual([]);
});

test('regenerating a channel key asks first and lets the old key work for the grace chosen', async ({ page, baseURL }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, ownerEmail, ownerPassword);
  await page.goto('/apps');
  await page.getByLabel('App name').fill('Mailer');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
  await page.goto('/channels');
  const email = page.getByRole('region', { name: 'Email' });
  await email.locator('summary', { hasText: 'Create an email key' }).click();
  await email.getByLabel('Key name').fill('order receipts');
  await email.getByLabel('App', { exact: true }).selectOption({ label: 'Mailer' });
  await email.getByRole('button', { name: 'Create an email key' }).click();
  const old = (await page.locator('#channel-secret').textContent())!.trim();
  const oldId = (await email.getByRole('row').filter({ hasText: 'order receipts' }).locator('code').first().textContent())!.trim();
  const row = email.getByRole('row').filter({ hasText: oldId });

  await row.getByLabel(`Manage ${oldId}`).click();
  // One click asks; Escape closes without doing anything, and focus comes back.
  const opener = row.getByRole('button', { name: `Regenerate ${oldId}…` });
  await opener.click();
  const dialog = page.getByRole('dialog', { name: `Regenerate ${oldId}` });
  await expect(dialog).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
  await opener.click();
  await dialog.getByLabel('The old key keeps working for').selectOption({ label: '1 hour' });
  await dialog.getByRole('button', { name: `Regenerate ${oldId}`, exact: true }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByText('The key it replaces keeps working for 1 hour (never past its own expiry), then stops.')).toBeVisible();
  // Focus moves to the new secret (the button that opened the dialog is gone).
  await expect(page.locator('section.secret-card')).toBeFocused();
  const fresh = (await page.locator('#channel-secret').textContent())!.trim();
  expect(fresh).not.toBe(old);
  await expect(row).toContainText(/active, replaced by key_/);
  // Both authenticate for now (each then refused outside its channel).
  for (const secret of [old, fresh]) {
    const r = await fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    expect((await r.json()).error.code).toBe('channel_not_allowed');
  }
  // The old key can still be ended early: revoked in a dialog that asks first, with
  // a reason for the audit log.
  if ((await row.locator('details').getAttribute('open')) === null) await row.getByLabel(`Manage ${oldId}`).click();
  await expect(row.getByRole('button', { name: `Regenerate ${oldId}…` })).toHaveCount(0);
  await row.getByRole('button', { name: `Revoke ${oldId}…` }).click();
  const revoke = page.getByRole('dialog', { name: `Revoke ${oldId}?` });
  await revoke.getByLabel('Reason (kept in the audit log)').fill('the new key is deployed');
  await revoke.getByRole('checkbox').check();
  await revoke.getByRole('button', { name: `Revoke ${oldId}`, exact: true }).click();
  await expect(revoke).toBeHidden();
  await expect(page.getByRole('status').filter({ hasText: 'Key revoked.' })).toBeVisible();
  const r = await fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${old}` } });
  expect((await r.json()).error.code).toBe('key_revoked');

  // Searched within one channel: the address keeps the search, the other channels step
  // aside, and "All channels" brings them back with the search kept.
  const search = page.getByRole('search', { name: 'Search channel keys' });
  await search.getByLabel('Search').fill('order receipts');
  await search.getByLabel('Channel').selectOption({ label: 'Email' });
  await search.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/\/channels\?q=order\+receipts&channel=email$/);
  await expect(email.getByRole('row').filter({ hasText: 'order receipts' })).toHaveCount(2);
  await expect(page.getByRole('region', { name: 'SMS' })).toHaveCount(0);
  await page.getByRole('link', { name: 'All channels' }).click();
  await expect(page).toHaveURL(/\/channels\?q=order\+receipts$/);
  await expect(page.getByRole('region', { name: 'SMS' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'WhatsApp' }).getByText('No keys match the search.')).toBeVisible();
  await expect(search.getByLabel('Search')).toHaveValue('order receipts');
  expect(errors).toEqual([]);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a regenerated channel key is shown in the answer, with what happens to the old one', async ({ page }) => {
    await signIn(page, ownerEmail, ownerPassword);
    await page.goto('/channels');
    const email = page.getByRole('region', { name: 'Email' });
    await email.locator('summary', { hasText: 'Create an email key' }).click();
    await email.getByLabel('Key name').fill('no-script receipts');
    await email.getByRole('button', { name: 'Create an email key' }).click();
    await page.getByRole('link', { name: /I have copied it/ }).click();
    const row = page.getByRole('region', { name: 'Email' }).getByRole('row').filter({ hasText: 'no-script receipts' });
    // A closed row holds no form: "Manage" links to the page with that row open.
    await row.locator('summary').click();
    await row.getByRole('link', { name: /^Regenerate or revoke key_\w+$/ }).click();
    await expect(page).toHaveURL(/\/channels\?manage=(key_\w+)#row-\1$/);
    await row.getByRole('button', { name: /^Regenerate key_\w+…$/ }).click();
    const dialog = page.getByRole('dialog', { name: /^Regenerate key_/ });
    await dialog.getByLabel('The old key keeps working for').selectOption({ label: 'no time (it ends now)' });
    await dialog.getByRole('button', { name: /^Regenerate key_\w+$/ }).click();
    await expect(page.getByRole('heading', { name: 'Copy your new channel key now', level: 1 })).toBeVisible();
    await expect(page.getByText('The key it replaces no longer works.')).toBeVisible();
    expect(await page.getByLabel('Secret').inputValue()).toMatch(/^kw_live_/);
  });

  test('a sender number whose key was revoked is given a new one through its row', async ({ page }) => {
    await signIn(page, ownerEmail, ownerPassword);
    await page.goto('/channels');
    const sms = () => page.getByRole('region', { name: 'SMS' });
    await sms().locator('summary', { hasText: 'Add a sender number' }).click();
    await sms().getByLabel('Number', { exact: true }).fill('+44 7911 123457');
    await sms().getByRole('button', { name: 'Add the number' }).click();
    await page.getByRole('link', { name: /I have copied it/ }).click();
    // Its key revoked (through the key's own row)...
    const keyRow = sms().getByRole('row').filter({ hasText: 'SMS +447911123457' });
    await keyRow.locator('summary').click();
    await keyRow.getByRole('link', { name: /^Regenerate or revoke key_\w+$/ }).click();
    await keyRow.getByRole('button', { name: /^Revoke key_\w+…$/ }).click();
    const revoke = page.getByRole('dialog', { name: /^Revoke key_\w+\?$/ });
    await revoke.getByLabel(/^I understand/).check();
    await revoke.getByRole('button', { name: /^Revoke key_\w+$/ }).click();
    const numberRow = sms().getByRole('row').filter({ hasText: '+447911123457' }).filter({ hasText: 'none (revoked or expired)' });
    await expect(numberRow).toBeVisible();
    // ...the number's row offers a new one, in a dialog, through the row's link.
    await expect(numberRow.locator('form')).toHaveCount(0);
    await numberRow.locator('summary').click();
    await numberRow.getByRole('link', { name: 'Make its key or remove +447911123457' }).click();
    await expect(page).toHaveURL(/\/channels\?manage=(number-\d+)#row-\1$/);
    const rowId = new URL(page.url()).searchParams.get('manage')!;
    const theRow = page.locator(`#row-${rowId}`);
    await theRow.getByRole('button', { name: 'Make its key for +447911123457…' }).click();
    const make = page.getByRole('dialog', { name: 'A new SMS key for +447911123457' });
    await make.getByLabel('Environment').selectOption('test');
    await make.getByRole('button', { name: 'Make the key for +447911123457', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Copy your new channel key now', level: 1 })).toBeVisible();
    expect(await page.getByLabel('Secret').inputValue()).toMatch(/^kw_test_/);
    const newKey = (await page.locator('body').innerText()).match(/key_[a-z0-9]{16}/)![0];
    await page.getByRole('link', { name: /I have copied it/ }).click();
    // The number's own row now names the new key, and no longer says it has none.
    await expect(theRow.getByRole('cell', { name: newKey, exact: true })).toBeVisible();
    await expect(theRow).not.toContainText('none (revoked or expired)');
  });
});

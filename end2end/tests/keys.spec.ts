import { test, expect, type Page } from '@playwright/test';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';

/** Signs the Owner in through the sign-in form and waits for the overview. */
async function signIn(page: Page) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(ownerEmail);
  await page.getByLabel('Password').fill(ownerPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
}

test('a key made in the panel works against the REST API until it is revoked there', async ({ page, baseURL }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page);

  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Apps' }).click();
  await page.getByLabel('App name').fill('Storefront');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();

  await nav.getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
  // From here on, an action must not blank the page to "Loading…" while it reloads.
  await page.evaluate(() => {
    (window as any).sawLoading = false;
    new MutationObserver(() => {
      if (document.querySelector('p.loading')) (window as any).sawLoading = true;
    }).observe(document.body, { childList: true, subtree: true });
  });
  await page.getByRole('button', { name: 'Create key…' }).click();
  await page.getByLabel('Key name').fill('checkout service');
  await page.getByLabel('App', { exact: true }).selectOption({ label: 'Storefront' });
  await page.getByLabel('Environment', { exact: true }).selectOption('test');
  await page.getByRole('button', { name: 'Create key', exact: true }).click();
  const secret = (await page.locator('#new-secret').textContent())!.trim();
  expect(secret).toMatch(/^kw_test_[0-9A-Za-z]{38}$/);
  await page.getByRole('button', { name: 'I have copied it' }).click();
  await expect(page.locator('#new-secret')).toBeHidden();
  expect(await page.evaluate(() => (window as any).sawLoading)).toBe(false);

  const whoami = () =>
    fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
  let r = await whoami();
  expect(r.status).toBe(200);
  const me = await r.json();
  expect(me.app.name).toBe('Storefront');
  expect(me.environment).toBe('test');

  // Its page draws the requests made with it (counted in memory, written every few
  // seconds), as a chart with a table behind it.
  for (let i = 0; i < 2; i++) expect((await whoami()).status).toBe(200);
  await page.goto(`/keys/${me.key_id}`);
  await expect(async () => {
    await page.reload();
    await expect(page.locator('#usage-hours figcaption p')).toHaveText('3 accepted, none refused.', { timeout: 1000 });
  }).toPass({ timeout: 20000 });
  const chart = page.getByRole('img', { name: /^Last 48 hours, per hour 3 accepted/ });
  await expect(chart).toBeVisible();
  await expect(chart.locator('rect.bar-ok')).toHaveCount(1);
  await page.getByText('Show the hours as a table').click();
  await expect(page.locator('#usage-hours tbody tr').first().locator('td').first()).toHaveText('3');
  await nav.getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();

  // The table shows the key; rename it, then revoke it there.
  let row = page.getByRole('row').filter({ hasText: 'checkout service' });
  await expect(row).toContainText(me.key_id);
  // The key ID copies with one click, and the button says so.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  const copyId = row.getByRole('button', { name: `Copy key ID ${me.key_id}` });
  await copyId.click();
  await expect(copyId).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(me.key_id);
  // A closed row holds no form fields; opening its actions draws them.
  await expect(row.locator('input, select')).toHaveCount(0);
  await row.getByText('Manage').click();
  // The forms open in a row of their own under the key's, across the table.
  const panel = page.locator(`#panel-${me.key_id}`);
  await expect(panel).toBeVisible();
  await expect(page.getByRole('group', { name: `Manage ${me.key_id}` })).toBeVisible();
  // An open row does not widen the table: at 1280 px nothing scrolls sideways.
  const sideways = () => page.locator('.table-wrap').first().evaluate((w) => w.scrollWidth - w.clientWidth);
  expect(page.viewportSize()!.width).toBe(1280);
  expect(await sideways()).toBeLessThanOrEqual(0);
  await panel.getByLabel('Name').fill('checkout service v2');
  await panel.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Key saved.' })).toBeVisible();
  row = page.getByRole('row').filter({ hasText: 'checkout service v2' });
  // The row's actions stay open after the edit (their state follows the key).
  await expect(row.locator('details')).toHaveAttribute('open', '');
  // Revoke asks first, in a modal dialog.
  await panel.getByRole('button', { name: `Revoke ${me.key_id}…` }).click();
  const dialog = page.getByRole('dialog', { name: `Revoke ${me.key_id}?` });
  await expect(dialog).toBeVisible();
  await dialog.getByPlaceholder('Reason').fill('end-to-end test');
  await dialog.getByRole('checkbox').check();
  await dialog.getByRole('button', { name: `Revoke ${me.key_id}`, exact: true }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Key revoked.' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'checkout service' })).toContainText('revoked');

  r = await whoami();
  expect(r.status).toBe(401);
  expect((await r.json()).error.code).toBe('key_revoked');

  // Filters (a plain GET form): by status.
  await page.getByLabel('Filter by status').selectOption('active');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=active/);
  await expect(page.getByRole('row').filter({ hasText: me.key_id })).toHaveCount(0);
  await page.goto('/keys?status=revoked');
  await expect(page.getByRole('row').filter({ hasText: me.key_id })).toHaveCount(1);
  // Search by name (any case) or key ID, kept in the address.
  await page.goto('/keys');
  await page.getByLabel('Search').fill('CHECKOUT SERVICE');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/q=CHECKOUT\+SERVICE/);
  await expect(page.getByRole('row').filter({ hasText: me.key_id })).toHaveCount(1);
  await page.getByLabel('Search').fill('no key is called this');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByText('No keys to show.')).toBeVisible();
  expect(errors).toEqual([]);
});

test('a row opened before the page ran moves focus into its forms, and a row the address opened closes there too', async ({ page, baseURL }) => {
  await signIn(page);
  const post = async (path: string, form: Record<string, string>) => {
    const r = await page.request.post(path, { form, headers: { origin: baseURL! } });
    expect(r.ok(), `${path}: ${r.status()}`).toBeTruthy();
    return r.json();
  };
  const app = await post('/fn/apps/create', { name: 'Row state', networks: '' });
  const made = await post('/fn/keys/create', {
    name: 'row state', app_id: String(app), environment: 'test', role_id: '3', expiry: 'never',
  });
  const id: string = made.key.key_id;

  // The bundle held back: the page is drawn, and its row opened, before any script runs.
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  await page.route('**/*.wasm', async (route) => {
    await gate;
    await route.continue();
  });
  await page.goto('/keys');
  const row = page.getByRole('row').filter({ hasText: 'row state' });
  await row.getByText('Manage').click();
  const link = row.getByRole('link', { name: `Edit, roll or revoke ${id}` });
  await expect(link).toBeVisible();
  release();
  await page.waitForFunction(() => document.documentElement.hasAttribute('data-hydrated'));
  // Followed now, the link opens the row where it is; focus goes to the row's first
  // field instead of falling to the page.
  await link.click();
  await expect(page.locator(`#panel-${id}`).getByLabel('Name')).toBeFocused();
  await expect(page).toHaveURL(/\/keys$/);
  await page.unroute('**/*.wasm');

  // A row the address opened: closing it takes it out of the address (a reload does
  // not open it again).
  await page.goto(`/keys?environment=test&manage=${id}`);
  await page.waitForFunction(() => document.documentElement.hasAttribute('data-hydrated'));
  await expect(row.locator('details')).toHaveAttribute('open', '');
  await row.getByText('Manage').click();
  await expect(page).toHaveURL(/\/keys\?environment=test$/);
  await page.reload();
  await expect(row.locator('details')).not.toHaveAttribute('open', '');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('creating a key shows its secret in the answer to the form, once', async ({ page, baseURL }) => {
    await signIn(page);

    await page.goto('/apps');
    await page.getByLabel('App name').fill('Plain forms');
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page).toHaveURL(/\/apps/);

    await page.goto('/keys');
    // The dialog opens by the browser's own invoker command: no script needed.
    await page.getByRole('button', { name: 'Create key…' }).click();
    await page.getByLabel('Key name').fill('no-script deploy');
    await page.getByLabel('App', { exact: true }).selectOption({ label: 'Plain forms' });
    await page.getByRole('button', { name: 'Create key', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Copy your new API key now', level: 1 })).toBeVisible();
    const secret = await page.getByLabel('Secret').inputValue();
    expect(secret).toMatch(/^kw_(live|test)_[0-9A-Za-z]{38}$/);
    const r = await fetch(`${baseURL}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    expect(r.status).toBe(200);
    expect((await r.json()).app.name).toBe('Plain forms');

    // Back to the table, at the new key's row.
    await page.getByRole('link', { name: /I have copied it/ }).click();
    await expect(page).toHaveURL(/\/keys#row-key_\w+$/);
    await expect(page.getByRole('row').filter({ hasText: 'no-script deploy' })).toHaveCount(1);
    await expect(page.locator('tr:target')).toContainText('no-script deploy');
    await expect(page.getByText(secret)).toHaveCount(0);
  });

  test('a refused form comes back open with what was typed, the error beside its field', async ({ page }) => {
    await signIn(page);

    await page.goto('/keys');
    await page.getByRole('button', { name: 'Create key…' }).click();
    await page.getByLabel('Key name').fill('kept across an error');
    await page.getByLabel('Environment', { exact: true }).selectOption('test');
    await page.getByLabel('Role of the key').selectOption({ label: 'Viewer' });
    const networks = page.getByLabel(/Allowed networks for this key/);
    await networks.fill('10.0.0.0/8\nnot a network');
    await page.getByRole('button', { name: 'Create key', exact: true }).click();

    const dialog = page.getByRole('dialog', { name: 'Create a key' });
    await expect(dialog).toBeVisible();
    await expect(networks).toHaveAttribute('aria-invalid', 'true');
    await expect(page.locator('#key-networks-error')).toContainText('Entry 2 (not a network) is not an IP address or a range');
    await expect(page.getByLabel('Key name')).toHaveValue('kept across an error');
    await expect(page.getByLabel('Environment', { exact: true })).toHaveValue('test');
    await expect(page.getByLabel('Role of the key').locator('option:checked')).toHaveText('Viewer');
    await expect(networks).toHaveValue('10.0.0.0/8\nnot a network');

    // Corrected and sent again: the key is made as chosen, the secret shown once.
    await networks.fill('10.0.0.0/8');
    await page.getByRole('button', { name: 'Create key', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Copy your new API key now', level: 1 })).toBeVisible();
    await page.getByRole('link', { name: /I have copied it/ }).click();
    const row = page.getByRole('row').filter({ hasText: 'kept across an error' });
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('Viewer');
    await expect(row).toContainText('test');

    // A closed row holds no form: without JavaScript, "Manage" offers a link to the
    // page with that row's actions open, which lands on the row.
    await expect(page.locator('tbody form')).toHaveCount(0);
    await row.getByText('Manage').click();
    await row.getByRole('link', { name: /^Edit, roll or revoke key_/ }).click();
    await expect(page).toHaveURL(/\/keys\?manage=key_\w+#row-key_\w+$/);
    const open = page.getByRole('row').filter({ hasText: 'kept across an error' });
    await expect(open.locator('details')).toHaveAttribute('open', '');
    await expect(page.locator('tbody tr details[open]')).toHaveCount(1);

    // A row's own form refused: its "Manage" and its dialog come back open, with what
    // was typed, and the next form sent from that answer still knows its page.
    await page.locator('tr.row-panel:not([hidden])').getByRole('button', { name: /^Revoke key_.*…$/ }).click();
    const revoke = page.getByRole('dialog', { name: /^Revoke key_/ });
    await revoke.getByLabel('Reason (kept in the audit log)').fill('rotating it');
    // (Sent without the box ticked, as a browser that ignores `required` would.)
    await revoke.getByRole('checkbox').evaluate((c) => c.removeAttribute('required'));
    await revoke.getByRole('button', { name: /^Revoke key_/ }).click();
    await expect(revoke).toBeVisible();
    await expect(revoke.getByLabel('Reason (kept in the audit log)')).toHaveValue('rotating it');
    await expect(revoke.getByRole('alert')).toContainText('Tick the box');
    await revoke.getByRole('checkbox').check();
    await revoke.getByRole('button', { name: /^Revoke key_/ }).click();
    // Done: back at the row it was sent from, not the page's top.
    await expect(page).toHaveURL(/\/keys\?manage=(key_\w+)#row-\1$/);
    await expect(page.getByRole('row').filter({ hasText: 'kept across an error' })).toContainText('revoked');
  });
});

test('a form sent before the page hydrated comes back at its own address and hydrates there', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // (The refused form's page is itself a 400, which the console reports as such.)
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 400')) errors.push(m.text());
  });
  await signIn(page);
  await page.goto('/apps');
  await page.getByLabel('App name').fill('Early forms');
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
  await page.goto('/keys');
  // The browser's own submission of the create form, as before the script has run.
  await page.evaluate(() => {
    const form = document.querySelector('form[action="/fn/keys/create"]') as HTMLFormElement;
    (form.querySelector('[name=name]') as HTMLInputElement).value = 'sent early';
    (form.querySelector('[name=networks]') as HTMLTextAreaElement).value = 'nowhere';
    HTMLFormElement.prototype.submit.call(form);
  });
  await expect(page).toHaveURL(/\/keys(\?|$)/);
  await expect(page.getByRole('dialog', { name: 'Create a key' })).toBeVisible();
  await expect(page.getByLabel('Key name')).toHaveValue('sent early');
  await expect(page.locator('#key-networks-error')).toContainText('Entry 1 (nowhere)');
  // Hydrated at the page's own address: the corrected form is sent by the page's
  // script and the secret shown in place.
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  // Once hydrated, the address no longer names the error: a reload would draw the page
  // afresh, not the old error above emptied fields.
  await expect(page).toHaveURL(/\/keys$/);
  await page.getByLabel(/Allowed networks for this key/).fill('10.0.0.0/8');
  await page.getByRole('button', { name: 'Create key', exact: true }).click();
  await expect(page.getByRole('heading', { name: /^Your new key key_/ })).toBeVisible();
  // Away and back through the panel's links: a fresh page, without the error the first
  // one hydrated with (the router keeps what it read from that address).
  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Overview' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await nav.getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'sent early' })).toBeVisible();
  await expect(page.locator('#key-networks-error')).toHaveCount(0);
  await expect(page.getByRole('dialog', { name: 'Create a key' })).toBeHidden();
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await expect(page.getByRole('dialog', { name: 'Create a key' })).toBeHidden();
  await expect(page.locator('#key-networks-error')).toHaveCount(0);
  expect(errors, errors.join('\n')).toEqual([]);
});

test.describe('in Istanbul', () => {
  test.use({ timezoneId: 'Europe/Istanbul' });

  test('a double click makes one key, focus goes to its secret, open actions stay with their key after a roll, and a date ends that day where the user is', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await signIn(page);
    await page.goto('/apps');
    await page.getByLabel('App name').fill('Rows app');
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
    // The form is cleared after it succeeded.
    await expect(page.getByLabel('App name')).toHaveValue('');
    // A refused form: its button was disabled while it ran, and the keyboard goes on
    // from the answer instead of falling back to the top of the page.
    await page.getByLabel('App name').fill('Rows app');
    await page.getByRole('button', { name: 'Create app' }).click();
    const refused = page.getByRole('alert').filter({ hasText: 'already exists' });
    await expect(refused).toBeVisible();
    await expect(refused).toBeFocused();
    // The field it is about says so, beside it and to a screen reader, keeping the text.
    await expect(page.getByLabel('App name')).toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByLabel('App name')).toHaveAccessibleDescription(/already exists/);
    await expect(page.getByLabel('App name')).toHaveValue('Rows app');

    await page.goto('/keys');
    const opener = page.getByRole('button', { name: 'Create key…' });
    const open = async () => {
      if (!(await page.locator('#create-key').evaluate((d) => (d as HTMLDialogElement).open))) await opener.click();
    };
    const create = async (name: string, how: 'click' | 'dblclick' = 'click') => {
      await open();
      await page.getByLabel('Key name').fill(name);
      await page.getByLabel('App', { exact: true }).selectOption({ label: 'Rows app' });
      await page.getByRole('button', { name: 'Create key', exact: true })[how]();
      // Done when the table shows the key and the form is cleared for the next one.
      await expect(page.getByRole('row').filter({ hasText: name }).first()).toBeVisible();
      await expect(page.getByLabel('Key name')).toHaveValue('');
      await page.waitForLoadState('networkidle');
    };

    // A double click: one key, and the keyboard is on the new secret.
    await create('double clicked', 'dblclick');
    await expect(page.locator('.secret-card')).toBeFocused();
    await expect(page.getByRole('row').filter({ hasText: 'double clicked' })).toHaveCount(1);
    await expect(page.getByLabel('Key name')).toHaveValue('');

    // The dialog closed after the key was made; Escape closes it too, and focus goes
    // back to the button that opened it.
    await expect(page.locator('#create-key')).toBeHidden();
    await opener.click();
    await expect(page.getByLabel('Key name')).toBeFocused();
    await page.keyboard.press('Escape');
    await expect(page.locator('#create-key')).toBeHidden();
    await expect(opener).toBeFocused();
    await opener.click();

    // The date field is there only for "on a date"; the preview says when it ends.
    const date = page.getByLabel('Expiry date');
    await expect(date).toBeHidden();
    await expect(page.locator('#key-expiry-preview')).toContainText('Expires 20');
    await page.getByLabel('Expires', { exact: true }).selectOption('date');
    await expect(date).toBeVisible();
    await date.fill('2030-01-15');
    // Istanbul is UTC+3: the day ends at its midnight (21:00 UTC), shown in the
    // browser's zone with the offset named.
    await expect(page.locator('#key-expiry-preview')).toContainText(
      'end of 2030-01-15 in your time zone (2030-01-16 00:00 UTC+3)',
    );
    await create('dated');
    const dated = page.getByRole('row').filter({ hasText: 'dated' });
    await expect(dated).toContainText('2030-01-16 00:00 UTC+3');
    // The browser told the server its zone: the server draws the next page in it too.
    expect((await page.context().cookies()).find((c) => c.name === 'kw_tz')?.value).toBe('Europe/Istanbul');
    await page.reload();
    await expect(dated).toContainText('2030-01-16 00:00 UTC+3');
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');

    // Two keys with their actions open; rolling the older one moves every row down.
    await create('alpha');
    await create('beta');
    const alpha = page.getByRole('row').filter({ hasText: 'alpha' });
    const beta = page.getByRole('row').filter({ hasText: 'beta' });
    const betaId = (await beta.locator('code').first().textContent())!.trim();
    const alphaId = (await alpha.locator('code').first().textContent())!.trim();
    await beta.getByText('Manage').click();
    await alpha.getByText('Manage').click();
    await page.locator(`#panel-${alphaId}`).getByRole('button', { name: /^Roll .*…$/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: /^Roll key_/ }).click();
    await expect(page.getByRole('row').filter({ hasText: 'alpha' })).toHaveCount(2);
    const rolledTo = (await page.locator('#secret-title').textContent())!.replace('Your new key ', '').trim();
    expect(rolledTo).not.toBe(alphaId);
    // The open actions stayed with beta and the rolled key, though every row moved; the
    // new key's row (now on top) is closed.
    const openRows = page.locator('tr:has(details[open])');
    await expect(openRows).toHaveCount(2);
    await expect(openRows.filter({ hasText: betaId })).toHaveCount(1);
    await expect(openRows.filter({ hasText: alphaId })).toHaveCount(1);
    await expect(openRows.filter({ has: page.locator('code', { hasText: rolledTo }) })).toHaveCount(0);

    // A row's name leads to the key's page: its facts, its own allow-list, its history.
    await beta.getByRole('link', { name: 'beta' }).click();
    await expect(page).toHaveURL(new RegExp(`/keys/${betaId}$`));
    await expect(page.getByRole('heading', { name: 'beta', level: 1 })).toBeVisible();
    await page.getByLabel(/Allowed networks for this key/).fill('198.51.100.0/24');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Key saved.' })).toBeVisible();
    await expect(page.getByRole('region', { name: 'Details' })).toContainText('198.51.100.0/24');
    await expect(page.getByRole('region', { name: 'History' })).toContainText('api_key.updated');
    await expect(page.getByRole('region', { name: 'History' })).toContainText('api_key.created');

    // Rolled on its page: the secret shows there, and "I have copied it" opens the new
    // key's page; the old key's history names its replacement.
    await page.getByRole('button', { name: `Roll ${betaId}…` }).click();
    await page.getByRole('dialog').getByRole('button', { name: `Roll ${betaId}` }).click();
    const newId = (await page.locator('#secret-title').textContent())!.replace('Your new key ', '').trim();
    expect(newId).not.toBe(betaId);
    await page.getByRole('link', { name: 'I have copied it: open the new key' }).click();
    await expect(page).toHaveURL(new RegExp(`/keys/${newId}$`));
    await expect(page.locator('#new-secret')).toHaveCount(0);
    await page.getByRole('region', { name: 'Details' }).getByRole('link', { name: betaId }).click();
    await expect(page).toHaveURL(new RegExp(`/keys/${betaId}$`));
    await expect(page.getByRole('region', { name: 'History' })).toContainText(`replaced by ${newId}`);
    // Back on the old key's page, the secret is not shown again.
    await expect(page.locator('#new-secret')).toHaveCount(0);
    expect(errors).toEqual([]);
  });
});

test('the keys table sorts by a column header, and the order survives the next page and the filters', async ({ page }) => {
  await signIn(page);
  await page.goto('/keys');
  const table = page.locator('table.keys-table');
  await table.getByRole('link', { name: 'Name' }).click();
  await expect(page).toHaveURL(/[?&]sort=name/);
  await expect(table.locator('th[aria-sort="ascending"]')).toContainText('Name');
  const names = await table.locator('td.key-name').allTextContents();
  expect(names.length, 'the earlier tests made keys').toBeGreaterThan(2);
  const lower = names.map((n) => n.trim().toLowerCase());
  expect(lower).toEqual([...lower].sort());
  // Filtering keeps the order.
  await page.getByLabel('Filter by status').selectOption('active');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/sort=name/);
  await expect(page).toHaveURL(/status=active/);
  // Created: newest first (the default order), then oldest first.
  await table.getByRole('link', { name: 'Created' }).click();
  await expect(page).not.toHaveURL(/sort=/);
  await expect(table.locator('th[aria-sort="descending"]')).toContainText('Created');
  await table.getByRole('link', { name: 'Created' }).click();
  await expect(page).toHaveURL(/sort=oldest/);
  await expect(table.locator('th[aria-sort="ascending"]')).toContainText('Created');
});

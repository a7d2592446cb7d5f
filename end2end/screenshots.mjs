// README screenshots of a panel with some data in it. Run by scripts/screenshots.sh,
// which starts the server and passes SHOTS_URL and SHOTS_PASSWORD (the Owner's).
// Data is made through the panel's own server functions.
import { chromium } from '@playwright/test';

const base = process.env.SHOTS_URL;
const ownerPassword = process.env.SHOTS_PASSWORD;
const out = process.env.SHOTS_DIR ?? '../docs/screenshots';
const devPassword = 'grace-' + Math.random().toString(36).slice(2) + '-hopper';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});

async function signedIn(email, password, options = {}) {
  const context = await browser.newContext({ baseURL: base, ...options });
  const page = await context.newPage();
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(base + '/');
  return { context, page };
}

async function call(page, path, form) {
  const r = await page.request.post(path, { form, headers: { origin: base } });
  if (!r.ok()) throw new Error(`${path}: ${r.status()} ${await r.text()}`);
  return r.json();
}

const owner = await signedIn('ada@example.com', ownerPassword);
const billing = await call(owner.page, '/fn/apps/create', { name: 'Billing', networks: '10.20.0.0/16' });
const newsletter = await call(owner.page, '/fn/apps/create', { name: 'Newsletter', networks: '' });
await call(owner.page, '/fn/users/create', {
  email: 'grace@example.com', display_name: 'Grace Hopper', password: devPassword, role_id: '3',
});
const key = (name, app_id, environment, expiry) => ({ name, app_id, environment, role_id: '3', expiry });
const worker = await call(owner.page, '/fn/keys/create', key('billing-worker', billing, 'live', 'never'));
// Some usage and history for its page: requests, then its allow-list narrowed, then
// requests refused from here.
const whoami = () => owner.page.request.get('/api/v1/whoami', { headers: { authorization: `Bearer ${worker.secret}` } });
for (let i = 0; i < 24; i++) await whoami();
await call(owner.page, '/fn/keys/update', {
  key_id: worker.key.key_id, name: 'billing-worker', role_id: '3', networks: '10.20.0.0/16', set_networks: 'yes',
});
for (let i = 0; i < 5; i++) await whoami();
const deploy = await call(owner.page, '/fn/keys/create', key('ci-deploy', newsletter, 'test', '7'));
for (let i = 0; i < 40; i++) {
  await owner.page.request.get('/api/v1/whoami', { headers: { authorization: `Bearer ${deploy.secret}` } });
}

// Usage is written every 5 seconds.
await new Promise((r) => setTimeout(r, 6000));

const dev = await signedIn('grace@example.com', devPassword);
await call(dev.page, '/fn/keys/create', key('checkout service', billing, 'live', '7'));
await call(dev.page, '/fn/keys/create', key('invoice exporter', billing, 'test', '90'));
for (const subject of ['Invoice run for November', 'Price change notice']) {
  await call(dev.page, '/fn/messages/create', {
    app_id: newsletter, channel: 'email', recipients: 'customers@example.net', subject,
    body: 'Hello,\n\nyour invoice for November is ready.\n',
  });
}
// Channel keys: an email key of hers; the deployment's RCS key and a WhatsApp key.
await call(dev.page, '/fn/channels/create', {
  channel: 'email', name: 'receipts mailer', app_id: billing, environment: 'live', expiry: '90', 'events[]': 'send',
});
await call(owner.page, '/fn/channels/create', { channel: 'rcs', name: 'rcs sender', app_id: newsletter, environment: 'live', expiry: 'never' });
await call(owner.page, '/fn/channels/create', { channel: 'whatsapp', name: 'support line', app_id: newsletter, environment: 'live', expiry: '90' });
// Two SMS sender numbers, each with its key.
await call(owner.page, '/fn/channels/numbers/add', { app_id: newsletter, number: '+44 7911 123456', environment: 'live' });
await call(owner.page, '/fn/channels/numbers/add', { app_id: billing, number: '+1 415 555 2671', environment: 'live' });
// With approval before a key works, her next key waits in the approval queue.
await call(owner.page, '/fn/settings/keys/save', {
  max_active_per_user_per_app: '10', max_expiry_days: '0', default_expiry: '90', require_approval: 'required',
});
await call(dev.page, '/fn/keys/create', key('nightly report', newsletter, 'live', '30'));
await dev.context.close();
// A failed sign-in, for the alerts panel.
const stranger = await browser.newContext({ baseURL: base });
await stranger.request.post('/fn/auth/login', {
  form: { email: 'grace@example.com', password: 'not her password' }, headers: { origin: base },
  maxRedirects: 0,
});
await stranger.close();

const shot = async (page, path, name) => {
  await page.goto(path);
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
};
await owner.page.setViewportSize({ width: 1360, height: 860 });
await shot(owner.page, '/', 'overview-desktop-light');
// One row's actions open: its forms in a row of their own under it.
await shot(owner.page, `/keys?manage=${worker.key.key_id}`, 'keys-desktop-light');
await shot(owner.page, '/approvals', 'approvals-desktop-light');
await shot(owner.page, `/keys/${worker.key.key_id}`, 'key-page-desktop-light');
await shot(owner.page, '/audit?verify=1', 'audit-desktop-light');
await shot(owner.page, '/channels', 'channels-desktop-light');
// The create dialog, open.
await owner.page.goto('/keys');
await owner.page.waitForLoadState('networkidle');
await owner.page.getByRole('button', { name: 'Create key…' }).click();
await owner.page.getByLabel('Key name').fill('reporting job');
await owner.page.screenshot({ path: `${out}/create-key-dialog-desktop-light.png` });
if (process.env.SHOTS_ALL) {
  for (const path of ['/apps', '/messages', '/users', '/roles', '/settings', '/account', '/api']) {
    await shot(owner.page, path, path.slice(1) + '-desktop-light');
  }
}
const phone = await signedIn('ada@example.com', ownerPassword, {
  viewport: { width: 390, height: 844 }, colorScheme: 'dark', deviceScaleFactor: 1,
});
await shot(phone.page, '/', 'overview-phone-dark');
await shot(phone.page, '/keys', 'keys-phone-dark');
await shot(phone.page, `/keys/${deploy.key.key_id}`, 'key-page-phone-dark');
await browser.close();

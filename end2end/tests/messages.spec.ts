import { test, expect, Page } from '@playwright/test';
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';
const mailApi = process.env.KEYWARD_E2E_MAIL_API ?? 'http://127.0.0.1:3926';
const authorPassword = 'author-' + Math.random().toString(36).slice(2) + '-pass';
const approverPassword = 'approver-' + Math.random().toString(36).slice(2) + '-pass';

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

async function addUser(page: Page, email: string, name: string, password: string, role: string) {
  await page.goto('/users');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Password (12 to 128 characters)').fill(password);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: role });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();
}

type Hook = { headers: http.IncomingHttpHeaders; body: string };

test('A writes, B approves: one mail at the SMTP server and one signed webhook POST', async ({ page }) => {
  test.setTimeout(60_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // A webhook receiver for this test.
  const hooks: Hook[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  // By name, so that delivery goes through Keyward's filtering resolver.
  const hookUrl = `http://localhost:${(receiver.address() as AddressInfo).port}/hook`;

  try {
    // The Owner adds A (Developer) and B (Approver), an app, and the webhook URL.
    await signIn(page, ownerEmail, ownerPassword);
    await addUser(page, 'ada@example.com', 'Ada Author', authorPassword, 'Developer');
    await addUser(page, 'ben@example.com', 'Ben Approver', approverPassword, 'Approver');
    await page.goto('/apps');
    await page.getByLabel('App name').fill('Newsletter');
    await page.getByRole('button', { name: 'Create app' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'App created.' })).toBeVisible();
    await page.getByRole('textbox', { name: 'Webhook URL for Newsletter' }).fill(hookUrl);
    await page.getByRole('button', { name: 'Register a webhook URL for Newsletter' }).click();
    const secret = (await page.locator('#webhook-secret').textContent())!.trim();
    expect(secret).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
    // A mistyped URL is registered, then removed: no longer listed.
    const typo = 'https://hooks.example.com/typo';
    await page.getByRole('textbox', { name: 'Webhook URL for Newsletter' }).fill(typo);
    await page.getByRole('button', { name: 'Register a webhook URL for Newsletter' }).click();
    await expect(page.locator('code.webhook-url', { hasText: typo })).toBeVisible();
    await page.getByRole('button', { name: `Remove the webhook URL ${typo}` }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Webhook URL removed' })).toBeVisible();
    await expect(page.locator('code.webhook-url', { hasText: typo })).toHaveCount(0);
    await expect(page.locator('code.webhook-url', { hasText: hookUrl })).toBeVisible();
    await signOut(page);

    // A writes an email and a webhook message: both wait.
    await signIn(page, 'ada@example.com', authorPassword);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Messages' }).click();
    await expect(page.getByRole('heading', { name: 'Messages', level: 1 })).toBeVisible();
    const compose = async (channel: string, subject: string, fill: () => Promise<void>) => {
      await page.getByLabel('App', { exact: true }).selectOption({ label: 'Newsletter (needs approval)' });
      await page.getByLabel('Channel', { exact: true }).selectOption(channel);
      await fill();
      await page.getByLabel('Subject').fill(subject);
      await page.getByLabel('Message', { exact: true }).fill(`${subject}: hello from Keyward.`);
      await page.getByRole('button', { name: 'Submit' }).click();
      const row = page.getByRole('row').filter({ hasText: subject });
      await expect(row).toContainText('pending approval');
      const id = (await row.getByRole('link').textContent())!.trim();
      expect(id).toMatch(/^msg_[a-z2-7]{16}$/i);
      await expect(page.getByRole('status').filter({ hasText: `${id} is waiting for approval` })).toBeVisible();
      return id;
    };
    // A refused message: the error is beside the field it is about, what was typed kept.
    await page.getByLabel('App', { exact: true }).selectOption({ label: 'Newsletter (needs approval)' });
    await page.getByLabel(/^Recipients/).fill('not an address');
    await page.getByLabel('Subject').fill('Refused');
    await page.getByLabel('Message', { exact: true }).fill('Hello.');
    await page.getByRole('button', { name: 'Submit' }).click();
    const recipients = page.getByLabel(/^Recipients/);
    await expect(recipients).toHaveAttribute('aria-invalid', 'true');
    await expect(recipients).toHaveAccessibleDescription('Entry 1 (not an address) is not an email address.');
    await expect(recipients).toHaveValue('not an address');
    await expect(page.getByLabel('Message', { exact: true })).not.toHaveAttribute('aria-invalid', 'true');
    const mailId = await compose('email', 'Spring newsletter', () =>
      page.getByLabel(/^Recipients/).fill('reader@example.org'),
    );
    // The compose form names a webhook by its origin and number, never its whole URL
    // (the path may carry a secret that only app managers see).
    await expect(page.locator('#msg-webhook')).not.toContainText(hookUrl);
    const hookOption = page.locator('#msg-webhook option', { hasText: `Newsletter: ${new URL(hookUrl).origin}/…` });
    const hookRef = (await hookOption.getAttribute('value'))!;
    expect(hookRef).toMatch(/^#\d+$/);
    const hookId = await compose('webhook', 'Hook call', () =>
      page.getByLabel('Webhook URL (registered on the Apps page)').selectOption(hookRef),
    );
    // A is not an approver: no Approvals page for them.
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Approvals' })).toHaveCount(0);
    await signOut(page);

    // B sees the exact payload and approves both.
    await signIn(page, 'ben@example.com', approverPassword);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Approvals' }).click();
    const card = page.locator('section.approval').filter({ hasText: mailId });
    await expect(card.locator('.payload-to')).toHaveText('reader@example.org');
    await expect(card.locator('.payload-subject')).toHaveText('Spring newsletter');
    await card.getByRole('button', { name: `Approve ${mailId}` }).click();
    await expect(page.getByRole('status').filter({ hasText: `Approved: ${mailId} is queued` })).toBeVisible();
    await page.locator('section.approval').filter({ hasText: hookId })
      .getByRole('button', { name: `Approve ${hookId}` }).click();
    await expect(page.getByRole('status').filter({ hasText: `Approved: ${hookId} is queued` })).toBeVisible();

    // One mail arrives at the SMTP server.
    const mails = async () =>
      ((await (await fetch(`${mailApi}/messages`)).json()) as { to: string[]; subject: string }[])
        .filter((m) => m.to.includes('reader@example.org'));
    await expect.poll(async () => (await mails()).length, { timeout: 15_000 }).toBe(1);
    expect((await mails())[0].subject).toBe('Spring newsletter');

    // One webhook POST, whose signature verifies with the secret shown at registration.
    await expect.poll(() => hooks.length, { timeout: 15_000 }).toBe(1);
    const h = hooks[0];
    expect(h.headers['x-keyward-delivery']).toBe(hookId);
    const ts = String(h.headers['x-keyward-timestamp']);
    const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(`${ts}.${h.body}`).digest('hex');
    expect(h.headers['x-keyward-signature']).toBe(expected);
    expect(JSON.parse(h.body)).toMatchObject({ id: hookId, subject: 'Hook call' });

    // The message page shows it sent, with its history.
    await page.goto(`/messages/${mailId}`);
    await expect(page.locator('.message-status')).toHaveText('sent');
    await expect(page.getByRole('cell', { name: 'approved' })).toBeVisible();
    await page.waitForTimeout(2500);
    expect((await mails()).length).toBe(1);
    expect(hooks.length).toBe(1);
    expect(errors).toEqual([]);
  } finally {
    receiver.close();
  }
});

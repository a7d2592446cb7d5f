import { test, expect, Page } from '@playwright/test';
import * as OTPAuth from 'otpauth';

const ownerEmail = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const ownerPassword = process.env.KEYWARD_E2E_PASSWORD ?? '';
const mailApi = process.env.KEYWARD_E2E_MAIL_API ?? 'http://127.0.0.1:3926';
const userPassword = 'second-factor-' + Math.random().toString(36).slice(2);

async function passwordStep(page: Page, email: string, password: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await expect(page).toHaveURL(/\/login$/);
}

async function addUser(page: Page, email: string) {
  await page.goto('/users');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Name', { exact: true }).fill(email.split('@')[0]);
  await page.getByLabel('Password (12 to 128 characters)').fill(userPassword);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Developer' });
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'User created.' })).toBeVisible();
}

/** The 6-digit code of the newest sign-in mail to `to`, read from the SMTP catcher. */
async function mailedCode(to: string, before: number): Promise<{ code: string; html: string }> {
  for (let i = 0; i < 50; i++) {
    const all = await (await fetch(`${mailApi}/messages`)).json();
    const mine = all.filter((m: any) => m.to.includes(to) && m.subject === 'Your Keyward sign-in code');
    if (mine.length > before) {
      const m = mine[mine.length - 1];
      return { code: /sign-in code is (\d{6})/.exec(m.text)![1], html: m.html };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no sign-in mail reached ${to}`);
}

async function invitationLink(to: string): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const all = await (await fetch(`${mailApi}/messages`)).json();
    const m = all.find((m: any) => m.to.includes(to) && m.subject === 'You are invited to Keyward');
    if (m) return /(http\S+\/invite\/[A-Za-z0-9_-]+)/.exec(m.text)![1];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no invitation reached ${to}`);
}

/** Sign-in code mails to `to` so far (other mail, e.g. approval notices, is not counted). */
async function mailCount(to: string): Promise<number> {
  const all = await (await fetch(`${mailApi}/messages`)).json();
  return all.filter((m: any) => m.to.includes(to) && m.subject === 'Your Keyward sign-in code').length;
}

test('an invited user accepts, sets up an authenticator app and signs in with its codes', async ({ page }) => {
  await passwordStep(page, ownerEmail, ownerPassword);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await page.goto('/users');
  await page.getByLabel('Email to invite').fill('tina@example.com');
  await page.getByLabel('Their name').fill('Tina');
  await page.getByLabel('Their role').selectOption({ label: 'Developer' });
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Invitation sent.' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'tina@example.com' })).toContainText('Invited');
  // Inviting someone who has an account is refused beside the email field, what was
  // typed kept.
  // The role chosen stays chosen when the page is drawn again with the error (it went
  // back to the default Developer, and a corrected resubmit invited a Developer).
  await page.getByLabel('Email to invite').fill(ownerEmail);
  await page.getByLabel('Their role').selectOption({ label: 'Viewer' });
  await page.getByRole('button', { name: 'Send invitation' }).click();
  const email = page.getByLabel('Email to invite');
  await expect(email).toHaveAttribute('aria-invalid', 'true');
  await expect(email).toHaveAccessibleDescription('This address already has an account.');
  await expect(email).toHaveValue(ownerEmail);
  await expect(page.getByLabel('Their role').locator('option:checked')).toHaveText('Viewer');
  await signOut(page);

  // The invitation mail, from the SMTP catcher.
  const link = await invitationLink('tina@example.com');
  await page.goto(link);
  await expect(page.getByRole('heading', { name: 'Welcome to Keyward' })).toBeVisible();
  // A common password is refused.
  await page.getByLabel('Password (12 to 128 characters)').fill('passwordpassword');
  await page.getByLabel('Password again').fill('passwordpassword');
  await page.getByRole('button', { name: 'Set password and sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('commonly used passwords');
  await page.getByLabel('Password (12 to 128 characters)').fill(userPassword);
  await page.getByLabel('Password again').fill(userPassword);
  await page.getByRole('button', { name: 'Set password and sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible();
  // A welcome says what to do first, beginning with the authenticator app.
  await expect(page.getByRole('heading', { name: /^Welcome to Keyward, / })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Set up an authenticator app' })).toBeVisible();
  // Once: the address drops it, so a reload shows the plain page.
  await expect(page).toHaveURL(/\/account$/);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Account', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: /^Welcome to Keyward, / })).toHaveCount(0);
  // The link works once.
  await page.goto(link);
  await expect(page.getByRole('heading', { name: 'This invitation was already used' })).toBeVisible();
  await page.goto('/account');
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await expect(page.getByRole('img', { name: 'QR code of the authenticator key' })).toBeVisible();
  const secret = (await page.locator('code.secret').textContent())!.trim();
  // An independent TOTP implementation (the otpauth package) computes the codes.
  const totp = new OTPAuth.TOTP({
    issuer: 'Keyward', label: 'tina@example.com', algorithm: 'SHA1', digits: 6, period: 30,
    secret: OTPAuth.Secret.fromBase32(secret),
  });
  await page.getByLabel('Code from the app').fill(totp.generate());
  await page.getByRole('button', { name: 'Confirm' }).click();
  const codes = page.locator('ul.codes li');
  await expect(codes).toHaveCount(10);
  const recovery = (await codes.first().textContent())!.trim();
  await expect(page.getByText('An authenticator app is set up. Recovery codes left: 10.')).toBeVisible();
  await signOut(page);

  // Sign in: the password, then a code. (The next step's code: the current step was
  // used up by the confirmation.)
  await passwordStep(page, 'tina@example.com', userPassword);
  await expect(page).toHaveURL(/\/login\/verify$/);
  await expect(page.getByRole('heading', { name: 'Confirm it is you' })).toBeVisible();
  const code = totp.generate({ timestamp: Date.now() + 30_000 });
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  // Back from the panel does not go back into a sign-in that has finished: it stays in
  // the panel, and so does a fresh load of the second step.
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await expect(page.getByText('This sign-in has expired')).toHaveCount(0);
  // Back once more, to the password step: the panel again, not the sign-in form.
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Sign in' })).toHaveCount(0);
  await page.goto('/login/verify');
  await expect(page).toHaveURL(/\/$/);
  await page.goto('/login?next=%2Fkeys');
  await expect(page).toHaveURL(/\/keys$/);
  await signOut(page);

  // The same code a second time is refused; a recovery code works, once.
  await passwordStep(page, 'tina@example.com', userPassword);
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('alert')).toHaveText('That code is not right, or was already used.');
  await page.getByLabel('Code', { exact: true }).fill(recovery);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await page.goto('/account');
  await expect(page.getByText('Recovery codes left: 9.')).toBeVisible();
  await signOut(page);
});

test('with a second factor required, a user without an app signs in with an emailed code', async ({ page }) => {
  await passwordStep(page, ownerEmail, ownerPassword);
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  await addUser(page, 'eli@example.com');
  await page.goto('/settings');
  await page.getByLabel('Second factor').selectOption('required');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Settings saved.' })).toBeVisible();
  await signOut(page);

  try {
    const before = await mailCount('eli@example.com');
    await passwordStep(page, 'eli@example.com', userPassword);
    await expect(page).toHaveURL(/\/login\/verify$/);
    await expect(page.getByText('We sent a 6-digit code to your email address.')).toBeVisible();
    const { code, html } = await mailedCode('eli@example.com', before);
    expect(html).toContain(code);
    // A wrong code first: refused, the page says so.
    await page.getByLabel('Code from the email').fill(code === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('alert')).toHaveText('That code is not right, or was already used.');
    await page.getByLabel('Code from the email').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
    await signOut(page);
  } finally {
    // Put the setting back for the other tests: the Owner now needs an emailed code too.
    const before = await mailCount(ownerEmail);
    await passwordStep(page, ownerEmail, ownerPassword);
    const { code } = await mailedCode(ownerEmail, before);
    await page.getByLabel('Code from the email').fill(code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
    await page.goto('/settings');
    await page.getByLabel('Second factor').selectOption('off');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Settings saved.' })).toBeVisible();
    await signOut(page);
  }
});

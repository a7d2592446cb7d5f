import { test, expect } from '@playwright/test';

const email = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const password = process.env.KEYWARD_E2E_PASSWORD ?? '';

// On a phone no page scrolls sideways: the navigation wraps, and wide tables scroll
// inside their own box. Every section the Owner can open, at 360 px, in dark mode.
test.use({ viewport: { width: 360, height: 740 }, colorScheme: 'dark' });

test('every page fits a phone screen', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  // (After sign-in the overview may still be loading in the browser.)
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
  const paths = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')!));
  expect(paths.length).toBeGreaterThan(5);
  for (const path of [...paths, '/account']) {
    await page.goto(path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    const [scroll, width, wide] = await page.evaluate(() => {
      const w = document.documentElement.clientWidth;
      // The innermost elements that stick out, to say what to fix.
      const out = [...document.querySelectorAll('body *')]
        .filter((e) => !e.closest('.table-wrap') && e.getBoundingClientRect().right > w + 0.5)
        .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > w + 0.5))
        .map((e) => `<${e.tagName.toLowerCase()} class="${e.className}">${(e.textContent ?? '').slice(0, 40)}`);
      return [document.documentElement.scrollWidth, w, out.slice(0, 5).join(' | ')];
    });
    expect(scroll, `${path} scrolls sideways: ${wide}`).toBeLessThanOrEqual(width);
  }
});

test('sixty keys with long names read as cards on a phone, without sideways scrolling', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
  const base = new URL(page.url()).origin;
  const post = (path: string, form: Record<string, string>) =>
    page.request.post(path, { form, headers: { origin: base } });
  let r = await post('/fn/settings/keys/save', {
    max_active_per_user_per_app: '1000', max_expiry_days: '0', default_expiry: '90',
  });
  expect(r.status()).toBe(200);
  r = await post('/fn/apps/create', { name: 'A phone app with a rather long name indeed' });
  expect(r.status()).toBe(200);
  const appId = String(await r.json());
  for (let i = 0; i < 60; i++) {
    r = await post('/fn/keys/create', {
      name: `nightly-export-worker-for-the-eu-west-region-${i}-with-a-name-that-goes-on`,
      app_id: appId, environment: 'live', role_id: '3', expiry: '30',
    });
    expect(r.status()).toBe(200);
  }
  await page.goto('/keys');
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
  const [pageScroll, pageWidth, tableScroll, tableWidth, wide] = await page.evaluate(() => {
    const wrap = document.querySelector('.keys-table')!.closest('.table-wrap')!;
    const w = document.documentElement.clientWidth;
    const out = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > w + 0.5)
      .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > w + 0.5))
      .map((e) => `<${e.tagName.toLowerCase()} class="${e.className}">${(e.textContent ?? '').slice(0, 40)}`);
    return [document.documentElement.scrollWidth, w, wrap.scrollWidth, wrap.clientWidth, out.slice(0, 5).join(' | ')];
  });
  expect(pageScroll, `the page scrolls sideways: ${wide}`).toBeLessThanOrEqual(pageWidth as number);
  expect(tableScroll, `the keys table scrolls sideways inside its box: ${wide}`).toBeLessThanOrEqual(tableWidth as number);
  // Each key is a card whose values carry their column's name.
  const first = page.locator('.keys-table tbody tr').first();
  const label = await first.locator('td[data-label="Expires"]').evaluate(
    (td) => getComputedStyle(td, '::before').content,
  );
  expect(label).toBe('"Expires"');
});

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

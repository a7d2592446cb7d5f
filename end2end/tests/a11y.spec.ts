import { test, expect, Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// axe-core on every page, signed out and in, light and dark: no violations. axe is
// evaluated through the browser's devtools protocol (the page's CSP allows no script
// that is not the panel's own).
const axeSource = readFileSync(createRequire(__filename).resolve('axe-core/axe.min.js'), 'utf8');
const email = process.env.KEYWARD_E2E_EMAIL ?? 'owner@example.com';
const password = process.env.KEYWARD_E2E_PASSWORD ?? '';

async function violations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v: any) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')).join(' | ')}`);
  });
  return found;
}

for (const colorScheme of ['light', 'dark'] as const) {
  test.describe(`${colorScheme}`, () => {
    test.use({ colorScheme });

    test(`axe finds nothing on any page (${colorScheme})`, async ({ page }) => {
      for (const path of ['/login']) {
        await page.goto(path);
        await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
        expect(await violations(page), `${path} signed out`).toEqual([]);
      }
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page.getByRole('heading', { name: 'Overview', level: 1 })).toBeVisible();
      // Something on every page: an app and a key (their pages are checked too).
      const base = new URL(page.url()).origin;
      const post = (path: string, form: Record<string, string>) =>
        page.request.post(path, { form, headers: { origin: base } });
      const app = await post('/fn/apps/create', { name: `Accessible ${colorScheme}` });
      expect(app.status()).toBe(200);
      const made = await post('/fn/keys/create', {
        name: `checked by axe (${colorScheme})`, app_id: String(await app.json()),
        environment: 'live', role_id: '3', expiry: '30',
      });
      expect(made.status()).toBe(200);
      const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
      const paths = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')!));
      // A key's page and an app's page too, when there are any.
      await page.goto('/keys');
      const keyLink = page.locator('td.key-name a').first();
      if (await keyLink.count()) paths.push((await keyLink.getAttribute('href'))!);
      await page.goto('/apps');
      const appLink = page.locator('h3 a[href^="/apps/"]').first();
      if (await appLink.count()) paths.push((await appLink.getAttribute('href'))!);
      for (const path of [...paths, '/account', '/keys/key_aaaaaaaaaaaaaaaa']) {
        await page.goto(path);
        await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
        await page.waitForLoadState('networkidle');
        expect(await violations(page), path).toEqual([]);
      }
      // An open dialog.
      await page.goto('/keys');
      await page.getByRole('button', { name: 'Create key…' }).click();
      await expect(page.getByRole('dialog')).toBeVisible();
      expect(await violations(page), 'the create dialog').toEqual([]);
    });
  });
}

import { test, expect } from '@playwright/test';
import { signInFromLoginPage } from './owner';

// The browser bundle as a browser gets it: content-addressed files, brotli on the wire,
// kept in the cache (a second visit asks the network only for the page), and far below
// the 20 MB the debug build used to send. The figures against the targets are printed
// by scripts/bundle-bench.sh; this guards the mechanism.
test('a cold visit gets the compressed bundle once and then from the cache', async ({ page, context }) => {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const seen = new Map<string, { bytes: number; cached: boolean; encoding: string; cache: string }>();
  const urls = new Map<string, string>();
  const fromCache = new Set<string>();
  cdp.on('Network.requestServedFromCache', (e) => fromCache.add(e.requestId));
  cdp.on('Network.responseReceived', (e) => {
    urls.set(e.requestId, e.response.url);
    const h = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    seen.set(e.requestId, {
      bytes: 0,
      cached: fromCache.has(e.requestId) || Boolean(e.response.fromDiskCache || (e.response as any).fromMemoryCache),
      encoding: h['content-encoding'] ?? '',
      cache: h['cache-control'] ?? '',
    });
  });
  cdp.on('Network.loadingFinished', (e) => {
    const s = seen.get(e.requestId);
    if (s) s.bytes = e.encodedDataLength;
  });

  await page.goto('/login');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await page.waitForLoadState('networkidle');
  const first = [...seen.entries()].map(([id, s]) => ({ url: urls.get(id)!, ...s }));
  // The main module and the sign-in page's own chunk (every page is a lazy route),
  // both from the content-addressed folder.
  const wasm = first.filter((r) => r.url.endsWith('.wasm'));
  expect(wasm.map((r) => r.url)).toContainEqual(expect.stringMatching(/\/pkg\/keyward-[0-9a-f]{16}\/keyward\.wasm$/));
  expect(wasm.length).toBeGreaterThanOrEqual(2);
  for (const r of first.filter((r) => r.url.includes('/pkg/'))) {
    expect(r.url, 'every bundle file is content-addressed').toMatch(/\/pkg\/keyward-[0-9a-f]{16}\/[A-Za-z0-9_-]+\.(js|wasm|css)$/);
    expect(r.encoding, r.url).toBe('br');
    expect(r.cache, r.url).toBe('public, max-age=31536000, immutable');
  }
  const total = first.reduce((n, r) => n + r.bytes, 0);
  // The optimised bundle, split per page (the whole panel in one file was 520 KB on the
  // wire; the debug bundle was 20 MB).
  expect(total).toBeLessThan(400 * 1024);

  // A second visit: only the page itself comes from the network.
  seen.clear();
  await page.goto('/login');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await page.waitForLoadState('networkidle');
  const again = [...seen.entries()].map(([id, s]) => ({ url: urls.get(id)!, ...s }));
  for (const r of again.filter((r) => r.url.includes('/pkg/'))) {
    expect(r.cached, `${r.url} from the cache`).toBe(true);
  }
});

// Every page is a lazy route: its code comes in a chunk of its own, named in a preload
// header of the page's answer so that it downloads beside the main module (fetched once,
// not again by the loader), and another page brings another chunk.
test('each page brings its own chunk, named in its answer and fetched once', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const wasm: string[] = [];
  page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasm.push(new URL(r.url()).pathname); });
  const chunkOf = async (path: string) => {
    wasm.length = 0;
    const answer = await page.goto(path);
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
    await page.waitForLoadState('networkidle');
    const link = (await answer!.allHeaders())['link'] ?? '';
    const preloads = [...link.matchAll(/<([^>]+)>; rel=preload; as=fetch/g)].map((m) => m[1]);
    expect(preloads, link).toHaveLength(1);
    expect(preloads[0]).toMatch(/^\/pkg\/keyward-[0-9a-f]{16}\/split_[A-Za-z0-9_]+\.wasm$/);
    expect(wasm.filter((w) => w === preloads[0]), 'the preloaded chunk is fetched once').toHaveLength(1);
    return preloads[0];
  };
  const login = await chunkOf('/login');
  // The sign-in form works once hydrated (the chunk's code runs) and leads on.
  await signInFromLoginPage(page);
  const keys = await chunkOf('/keys');
  expect(keys).not.toBe(login);
  // The browser's own navigation to another page loads that page's chunk.
  wasm.length = 0;
  await page.getByRole('link', { name: 'Apps', exact: true }).first().click();
  await expect(page.getByRole('heading', { name: 'Apps', level: 1 })).toBeVisible();
  expect(wasm.filter((w) => /\/split_/.test(w)).length).toBe(1);
  expect(errors, errors.join('\n')).toEqual([]);
});

// A page's chunk that cannot be loaded (a tab left open across a deploy that removed
// its bundle, a network failure) crashes the wasm: the page falls back to plain HTML,
// going where the user was going, and its links and forms then work without script.
test('a chunk that cannot be loaded falls back to plain links and forms', async ({ page }) => {
  await page.goto('/login');
  await signInFromLoginPage(page);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await page.route(/\/split___keys_page_view[A-Za-z0-9_]*\.wasm$/, (r) => r.fulfill({ status: 404, body: '' }));
  await page.getByRole('link', { name: 'API keys', exact: true }).first().click();
  await expect(page).toHaveURL(/\/keys$/);
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();
  // Its chunk still fails: the page stays as the server drew it (no reload loop), and a
  // link is followed by the browser itself.
  await page.waitForTimeout(500);
  await expect(page).toHaveURL(/\/keys$/);
  await page.getByRole('link', { name: 'Apps', exact: true }).first().click();
  await expect(page.getByRole('heading', { name: 'Apps', level: 1 })).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
});

// While a page's chunk is on its way, the part of the app already hydrated leaves the
// page's title alone (axe's "document-title": it was emptied until the chunk came).
test('the title stays while the page waits for its chunk', async ({ page }) => {
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  await page.route(/\/split___login_page_view[A-Za-z0-9_]*\.wasm$/, async (r) => { await held; await r.continue(); });
  await page.goto('/login');
  await expect(page).toHaveTitle('Sign in · Keyward');
  // The main module has run (its loader asked for the chunk) and waits.
  await page.waitForTimeout(1000);
  await expect(page).toHaveTitle('Sign in · Keyward');
  await expect(page.locator('html')).not.toHaveAttribute('data-hydrated', '');
  release();
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', '');
  await expect(page).toHaveTitle('Sign in · Keyward');
});

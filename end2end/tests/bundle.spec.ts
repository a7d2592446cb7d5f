import { test, expect } from '@playwright/test';

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
  const wasm = first.filter((r) => r.url.endsWith('.wasm'));
  expect(wasm).toHaveLength(1);
  expect(wasm[0].url).toMatch(/\/pkg\/keyward-[0-9a-f]{16}\.wasm$/);
  expect(wasm[0].encoding).toBe('br');
  expect(wasm[0].cache).toBe('public, max-age=31536000, immutable');
  for (const r of first.filter((r) => r.url.includes('/pkg/'))) {
    expect(r.url, 'every bundle file is content-addressed').toMatch(/\/pkg\/keyward-[0-9a-f]{16}\.(js|wasm|css)$/);
    expect(r.encoding, r.url).toBe('br');
  }
  const total = first.reduce((n, r) => n + r.bytes, 0);
  // The optimised bundle: about 450 KB on the wire today (the debug bundle was 20 MB).
  expect(total).toBeLessThan(600 * 1024);

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

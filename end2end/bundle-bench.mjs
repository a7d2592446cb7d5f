// Run by scripts/bundle-bench.sh (which starts the server and passes BENCH_URL and
// BENCH_PASSWORD, the Owner's). Cold loads: a fresh browser context each time, so
// nothing is cached; bytes are counted from the network events of Chromium's DevTools
// protocol (encodedDataLength: headers and body as received).
import { chromium } from '@playwright/test';

const base = process.env.BENCH_URL;
const password = process.env.BENCH_PASSWORD;
const targets = { bytes: 400 * 1024, hydrationMs: 300 };
const runs = 5;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});

// Sign in once and keep the session cookie for the signed-in pages.
const setup = await browser.newContext({ baseURL: base });
const page0 = await setup.newPage();
await page0.goto('/login');
await page0.getByLabel('Email').fill('ada@example.com');
await page0.getByLabel('Password').fill(password);
await page0.getByRole('button', { name: 'Sign in' }).click();
await page0.waitForURL(base + '/');
const call = async (path, form) => {
  const r = await page0.request.post(path, { form, headers: { origin: base } });
  if (!r.ok()) throw new Error(`${path}: ${r.status()} ${await r.text()}`);
  return r.json();
};
// 24 keys over three apps (Settings > Keys allows 10 active keys per app and owner).
for (const name of ['Billing', 'Newsletter', 'Storefront']) {
  const app = await call('/fn/apps/create', { name, networks: '' });
  for (let i = 0; i < 8; i++) {
    await call('/fn/keys/create', {
      name: `${name.toLowerCase()}-worker-${i}`, app_id: String(app), environment: i % 2 ? 'live' : 'test',
      role_id: '3', expiry: 'never',
    });
  }
}
const cookies = await setup.cookies();
await setup.close();

// One cold load of `path`: bytes on the wire and ms from navigation start to hydration
// (the wasm marks <html data-hydrated> right after hydrating; a MutationObserver
// installed before any script records the moment).
async function coldLoad(path, signedIn) {
  const context = await browser.newContext({ baseURL: base });
  if (signedIn) await context.addCookies(cookies);
  await context.addInitScript(() => {
    // When the wasm is compiled and instantiated (before hydration starts).
    for (const name of ['instantiateStreaming', 'instantiate']) {
      const orig = WebAssembly[name];
      WebAssembly[name] = async (...args) => {
        const r = await orig.apply(WebAssembly, args);
        window.__instantiatedAt ??= performance.now();
        return r;
      };
    }
    new MutationObserver((_, obs) => {
      if (document.documentElement.hasAttribute('data-hydrated')) {
        window.__hydratedAt = performance.now();
        obs.disconnect();
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  const files = [];
  const urls = new Map();
  cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    files.push([urls.get(e.requestId) ?? '?', e.encodedDataLength]);
  });
  await page.goto(path, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 30000 });
  const [hydratedAt, instantiatedAt, marks] = await page.evaluate(() => {
    // Where the time went: the document, the first paint, and each bundle file.
    const nav = performance.getEntriesByType('navigation')[0];
    const paint = performance.getEntriesByType('paint').find((p) => p.name === 'first-paint');
    const marks = [`html ${nav.responseEnd.toFixed(0)}`, `paint ${paint ? paint.startTime.toFixed(0) : '-'}`];
    for (const r of performance.getEntriesByType('resource')) {
      if (!r.name.includes('/pkg/')) continue;
      marks.push(`${r.name.split('/').pop()} ${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)}`);
    }
    return [window.__hydratedAt, window.__instantiatedAt, marks.join(', ')];
  });
  await page.waitForLoadState('networkidle');
  if (new URL(page.url()).pathname !== path) throw new Error(`${path} went to ${page.url()}`);
  await context.close();
  return { bytes, hydratedAt, instantiatedAt, files, marks };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let failed = false;
console.log(`page     transferred (target ≤ ${targets.bytes / 1024} KB)   hydrated after (median of ${runs}; target ≤ ${targets.hydrationMs} ms)`);
for (const [path, signedIn] of [['/login', false], ['/', true], ['/keys', true]]) {
  const loads = [];
  for (let i = 0; i < runs; i++) loads.push(await coldLoad(path, signedIn));
  const bytes = median(loads.map((l) => l.bytes));
  const ms = median(loads.map((l) => l.hydratedAt));
  const ready = median(loads.map((l) => l.instantiatedAt));
  const okBytes = bytes <= targets.bytes;
  const okMs = ms <= targets.hydrationMs;
  failed ||= !okBytes || !okMs;
  console.log(
    `${path.padEnd(8)} ${(bytes / 1024).toFixed(1).padStart(8)} KB ${okBytes ? 'met' : 'MISSED'}` +
    `            ${ms.toFixed(0).padStart(5)} ms ${okMs ? 'met' : 'MISSED'}` +
    ` (wasm ready at ${ready.toFixed(0)} ms, hydrating ${(ms - ready).toFixed(0)} ms)`,
  );
  if (process.env.BENCH_MARKS) for (const l of loads) console.log(`           ${l.hydratedAt.toFixed(0)} ms: ${l.marks}`);
  for (const [url, n] of loads[0].files) console.log(`           ${(n / 1024).toFixed(1).padStart(8)} KB  ${url.replace(base, '')}`);
}
await browser.close();
process.exit(failed ? 1 : 0);

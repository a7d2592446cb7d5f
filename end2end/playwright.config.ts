import { defineConfig } from '@playwright/test';

// The server is started by scripts/test.sh (a fresh database, an Owner made with
// `keyward admin create`); its address comes in KEYWARD_E2E_URL.
export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  retries: 0,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: process.env.KEYWARD_E2E_URL ?? 'http://127.0.0.1:3917',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});

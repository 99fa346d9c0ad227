/**
 * A real browser for web logins: Debian's chromium driven by playwright-core, headless. `login`
 * opens the link a VPN client was given, signs in at the test provider's login page, accepts
 * its consent page, and returns the text the daemon's page showed at the end.
 */
import type { TestContext } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function startBrowser(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  t.after(() => browser.close());
  return browser;
}

export interface LoginOptions {
  /** Extra request headers (e.g. X-Forwarded-For), sent with every request. */
  readonly headers?: Record<string, string>;
  /** Called with the URL of the callback the provider redirected to, before it is loaded. */
  readonly onCallback?: (url: string) => void;
  /** Stop at the provider's login page (the login is never finished). */
  readonly abandonAtProvider?: boolean;
  /** Before submitting the login form. */
  readonly beforeSubmit?: () => Promise<void>;
}

/** The message on the daemon's page, once the browser is back there (or shown at the link). */
async function daemonMessage(page: Page): Promise<string> {
  await page.locator('#message').waitFor({ timeout: 30_000 });
  return (await page.locator('#message').textContent()) ?? '';
}

export async function browserLogin(browser: Browser, url: string, user: string, o: LoginOptions = {}): Promise<string> {
  const context = await browser.newContext(o.headers ? { extraHTTPHeaders: o.headers } : {});
  try {
    const page = await context.newPage();
    if (o.onCallback) page.on('request', (r) => (new URL(r.url()).pathname.endsWith('/callback') ? o.onCallback!(r.url()) : undefined));
    await page.goto(url);
    // the daemon's page right away: the link was refused
    const login = page.locator('input[name="login"]');
    const first = await Promise.race([
      login.waitFor({ timeout: 30_000 }).then(() => 'provider'),
      page
        .locator('#message')
        .waitFor({ timeout: 30_000 })
        .then(() => 'daemon'),
    ]);
    if (first === 'daemon') return await daemonMessage(page);
    if (o.abandonAtProvider) return '';
    await login.fill(user);
    await page.locator('input[name="password"]').fill('any-password');
    await o.beforeSubmit?.();
    await page.locator('button[type="submit"]').click();
    // the consent page (offline_access, for the refresh token), unless the browser is back already
    for (let i = 0; i < 3; i++) {
      await page.waitForLoadState();
      if ((await page.locator('#message').count()) > 0) break;
      const button = page.locator('button[type="submit"]');
      if ((await button.count()) === 0) break;
      await button.first().click();
    }
    return await daemonMessage(page);
  } finally {
    await context.close();
  }
}

/** Loads a URL in a fresh context and returns the daemon page's message. */
export async function visit(browser: Browser, url: string): Promise<string> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    return await daemonMessage(page);
  } finally {
    await context.close();
  }
}

/**
 * The operator console's login through a real OpenID Connect provider (panva's oidc-provider,
 * started here, with users and group claims) in a real browser (Debian's chromium through
 * playwright-core), against a real OpenVPN server, a real client and the real daemon: an
 * operator logs in through the provider and disconnects the client; a viewer sees no button and
 * a forged POST is refused; a user in no mapped group is refused with a clear page; a replayed
 * callback is refused. The password form stays on the same page (both ways configured).
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ownedDir, REPO } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { CHROMIUM, startBrowser } from '../support/browser.ts';
import { startConsole } from '../support/console-process.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { OIDC_CLIENT, startProvider } from '../support/oidc-provider.ts';
import { modeLab } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root' : existsSync(CHROMIUM) ? false : 'chromium is not installed';
const ARTIFACTS = join(REPO, 'test-artifacts', 'console');

const USERS = {
  oscar: { preferred_username: 'oscar', groups: ['staff', 'vpn-ops'], email_verified: true },
  vera: { preferred_username: 'vera', groups: ['vpn-view'], email_verified: true },
  nils: { preferred_username: 'nils', groups: ['staff'], email_verified: true },
};

/**
 * Logs in through the provider from the console's login page: the link, the provider's login
 * form (any password; the name picks the user), its consent page; resolves once the browser is
 * back at the console on the live page or a page with a notice. Returns the callback URL.
 */
async function providerLogin(page: Page, url: string, user: string): Promise<string> {
  let callback = '';
  page.on('request', (r) => {
    if (r.url().startsWith(`${url}/login/oidc/callback`)) callback = r.url();
  });
  await page.goto(`${url}/login`);
  await page.click('#oidc-login');
  const login = page.locator('input[name="login"]');
  await login.waitFor({ timeout: 30_000 });
  await login.fill(user);
  await page.locator('input[name="password"]').fill('any-password');
  await page.locator('button[type="submit"]').click();
  // the consent page, until the browser is back at the console
  await waitFor(
    `${user} back at the console`,
    async () => {
      await page.waitForLoadState();
      if (page.url().startsWith(url)) return true;
      const button = page.locator('button[type="submit"]');
      if ((await button.count()) > 0)
        await button
          .first()
          .click({ timeout: 5_000 })
          .catch(() => undefined);
      return false;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await page.waitForSelector('#live, .notice', { timeout: 30_000 });
  assert.ok(callback, 'the provider redirected to the callback');
  return callback;
}

const browserOf = async (t: TestContext): Promise<Browser> => startBrowser(t);

test('console login through an OpenID Connect provider: operator kills, viewer cannot, a user in no mapped group and a replayed callback are refused', {
  skip,
  timeout: 600_000,
}, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'fxs-console-oidc-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  chmodSync(work, 0o755);
  const data = ownedDir(join(work, 'data'));
  const usersFile = join(work, 'console-users');
  writeFileSync(usersFile, `olga:${await hashPassword('operator-pw')}:operator\n`, { mode: 0o640 });
  const secretFile = join(work, 'oidc-secret');
  writeFileSync(secretFile, `${OIDC_CLIENT.secret}\n`, { mode: 0o600 });
  const audit = join(work, 'audit.jsonl');
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const provider = await startProvider(t, { redirectUris: [`${url}/login/oidc/callback`], users: USERS });
  const h = await modeLab(t, 'management', {
    extraConfig: [
      'store:',
      `  sqlite: ${join(data, 'accounting.db')}`,
      'control:',
      `  socket: ${join(data, 'control.sock')}`,
      '  allow-kill: true',
      'console:',
      `  listen: 127.0.0.1:${port}`,
      '  auth:',
      `    users-file: ${usersFile}`,
      '    oidc:',
      `      issuer: ${provider.issuer}`,
      `      client-id: ${OIDC_CLIENT.id}`,
      `      client-secret-file: ${secretFile}`,
      `      redirect-url: ${url}/login/oidc/callback`,
      '      groups-claim: groups',
      '      roles:',
      '        operator: [vpn-ops]',
      '        viewer: [vpn-view]',
      `  audit-log: ${audit}`,
    ],
    pluginsAfter: ['  - use: accounting'],
  });
  const consoleProcess = await startConsole(['--config', h.configPath]);
  t.after(consoleProcess.stop);
  assert.equal(consoleProcess.url, url, 'the console serves where its config says');
  const browser = await browserOf(t);
  const client = await h.lab.startClient({ commonName: 'laptop', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
  await client.waitConnected();

  // both ways on one page
  const first = await browser.newPage();
  await first.goto(`${url}/login`);
  assert.equal(await first.locator('form.login input[name=password]').count(), 1, 'the password form');
  assert.match((await first.textContent('#oidc-login')) ?? '', /Log in through 127\.0\.0\.1:\d+/);
  await first.close();

  // a viewer through the provider: the live client, no button; a forged POST is refused
  const viewer = await (await browser.newContext()).newPage();
  await providerLogin(viewer, url, 'vera');
  await viewer.waitForFunction(() => document.querySelectorAll('#live-rows tr[data-session]').length === 1, undefined, { timeout: 60_000 });
  assert.match((await viewer.textContent('form.logout span')) ?? '', /^vera \(viewer\)$/);
  assert.equal(await viewer.locator('form.kill').count(), 0, 'no disconnect button for a viewer');
  const id = await viewer.locator('#live-rows tr[data-session]').getAttribute('data-session');
  assert.ok(id);
  const forged = await viewer.evaluate(`(async () => {
    const body = new URLSearchParams({ id: ${JSON.stringify(id)}, reason: 'forged', _csrf: document.querySelector('input[name=_csrf]').value });
    return (await fetch('/kill', { method: 'POST', body })).status;
  })()`);
  assert.equal(forged, 403, "a viewer's POST with its own CSRF token");
  assert.equal(client.running, true);

  // a user in no mapped group: a clear page, no session
  const outsider = await (await browser.newContext()).newPage();
  await providerLogin(outsider, url, 'nils');
  assert.match(
    (await outsider.textContent('.notice')) ?? '',
    /signed in at the identity provider as nils, but that account is in none of the groups that may use this console/,
  );
  await outsider.screenshot({ path: join(ARTIFACTS, 'oidc-refused.png'), fullPage: true });
  await outsider.goto(url);
  assert.equal(new URL(outsider.url()).pathname, '/login', 'no session for nils');

  // the operator through the provider disconnects the client
  const op = await (await browser.newContext()).newPage();
  const callback = await providerLogin(op, url, 'oscar');
  assert.match((await op.textContent('form.logout span')) ?? '', /^oscar \(operator\)$/);
  const row = op.locator('#live-rows tr[data-session]');
  await row.locator('input[name=reason]').fill('stolen laptop');
  await row.locator('button').click();
  await op.waitForSelector('.notice');
  await client.exited;

  // the operator's callback, replayed in another browser: refused, no session
  const replay = await (await browser.newContext()).newPage();
  const replayed = await replay.goto(callback);
  assert.equal(replayed?.status(), 400);
  assert.match((await replay.textContent('.notice')) ?? '', /already completed \(a replayed callback\)/);
  await replay.goto(url);
  assert.equal(new URL(replay.url()).pathname, '/login');

  const lines = readFileSync(audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const logins = lines.filter((l) => l.action === 'login');
  assert.deepEqual(
    logins.map((l) => [l.method, l.user, l.role, l.subject, l.issuer, l.from]),
    [
      ['oidc', 'vera', 'viewer', 'vera', provider.issuer, '127.0.0.1'],
      ['oidc', 'oscar', 'operator', 'oscar', provider.issuer, '127.0.0.1'],
    ],
  );
  const failed = lines.filter((l) => l.action === 'login-failed');
  assert.deepEqual(
    failed.map((l) => [l.method, l.user, l.subject, l.reason]),
    [
      ['oidc', 'nils', 'nils', 'nils is in none of the groups that may use this console'],
      ['oidc', undefined, undefined, 'this login was already completed (a replayed callback)'],
    ],
  );
  const kill = lines.find((l) => l.action === 'kill');
  assert.equal(kill?.user, 'oscar');
  assert.equal(kill?.reason, 'stolen laptop');
  assert.ok(
    lines.some((l) => l.action === 'refused' && l.user === 'vera'),
    "the viewer's forged POST is audited",
  );
});

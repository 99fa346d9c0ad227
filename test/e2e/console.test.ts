/**
 * The operator console in a real browser (Debian's chromium through playwright-core), against a
 * real OpenVPN server, real clients and the real daemon (management mode, accounting in SQLite):
 * log in, see clients come and go live, filter the history and export CSV, disconnect a client
 * as operator and be refused as viewer, CSRF, rate-limited logins, hostile names shown as text,
 * the Content-Security-Policy. Screenshots go to test-artifacts/console/ (kept by CI).
 * A second test measures the live page's load time with 1,000 live clients from a stand-in
 * control socket.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ownedDir, REPO } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { startConsole } from '../support/console-process.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { modeLab } from './mode-lab.ts';

const ARTIFACTS = join(REPO, 'test-artifacts', 'console');
/** A name that runs script if a page puts it into HTML unescaped. */
const XSS = '<img src=x onerror="window.__pwned=1">';
/** A name a spreadsheet would run as a formula. */
const FORMULA = '=HYPERLINK("http://x","y")';

async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
  t.after(() => browser.close());
  return browser;
}

/** Watches a page for script that should never run: page errors, and the payload's global. */
function guard(page: Page): { errors: string[]; pwned: () => Promise<unknown> } {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { errors, pwned: () => page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned) };
}

async function login(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(`${url}/login`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.click('form.login button');
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

test('the console in chromium: live clients, history and CSV, kill as operator, refused as viewer, hostile names as text', { timeout: 600_000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'fxs-console-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // the daemon (nobody) reaches its store and control socket below it
  chmodSync(work, 0o755);
  const data = ownedDir(join(work, 'data'));
  const db = join(data, 'accounting.db');
  const usersFile = join(work, 'console-users');
  writeFileSync(usersFile, `olga:${await hashPassword('operator-pw')}:operator\ncarol:${await hashPassword('viewer-pw')}:viewer\n`, { mode: 0o640 });
  const audit = join(work, 'audit.jsonl');
  const controlSocket = join(data, 'control.sock');
  const h = await modeLab(t, 'management', {
    extraConfig: [
      'store:',
      `  sqlite: ${db}`,
      'control:',
      `  socket: ${controlSocket}`,
      '  allow-kill: true',
      'console:',
      '  auth:',
      `    users-file: ${usersFile}`,
      `  audit-log: ${audit}`,
    ],
    pluginsAfter: ['  - use: accounting'],
  });
  const consoleProcess = await startConsole(['--config', h.configPath, '--listen', `127.0.0.1:${await freeLoopbackPort()}`]);
  t.after(consoleProcess.stop);
  const { url } = consoleProcess;
  const browser = await launch(t);

  // the operator logs in; the page is served with a strict CSP and no inline script
  const op = await browser.newPage();
  const opGuard = guard(op);
  const first = await op.goto(`${url}/login`);
  const csp = first!.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  await login(op, url, 'olga', 'operator-pw');
  await op.waitForSelector('#live');
  await op.waitForFunction(() => document.getElementById('live-state')?.textContent?.includes('on'), undefined, { timeout: 30_000 });
  // a marker that a reload would lose
  await op.evaluate(() => ((window as unknown as { __marker: number }).__marker = 1));

  // clients appear live, hostile names as text
  const [alice, xss, formula] = await Promise.all(
    ['alice', XSS, FORMULA].map((commonName) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] })),
  );
  await Promise.all([alice!.waitConnected(), xss!.waitConnected(), formula!.waitConnected()]);
  await op.waitForFunction(() => document.querySelectorAll('#live-rows tr[data-session]').length === 3, undefined, { timeout: 60_000 });
  const names = await op.$$eval('#live-rows td.name', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(new Set(names), new Set(['alice', XSS, FORMULA]), 'hostile names are shown as exactly their text');
  assert.equal(await op.evaluate(() => (window as unknown as { __marker?: number }).__marker), 1, 'no reload');
  await shot(op, 'live');

  // ... and leave live
  await formula!.stop();
  await op.waitForFunction(() => document.querySelectorAll('#live-rows tr[data-session]').length === 2, undefined, { timeout: 60_000 });
  assert.equal(await op.evaluate(() => (window as unknown as { __marker?: number }).__marker), 1, 'still no reload');

  // history filtered by user, and its CSV
  await op.goto(`${url}/history?user=${encodeURIComponent(FORMULA)}`);
  await waitFor('the ended session in the history', async () => {
    await op.reload();
    return (await op.textContent('#history-count')) === '1' && (await op.textContent('#history tbody td.ended')) === 'disconnect';
  });
  await shot(op, 'history');
  const csv = await (await op.context().request.get(`${url}/history.csv?user=${encodeURIComponent(FORMULA)}`)).text();
  assert.ok(csv.includes(`"'=HYPERLINK(""http://x"",""y"")"`), `the formula is defused: ${csv}`);
  const all = await (await op.context().request.get(`${url}/history.csv`)).text();
  assert.equal(all.trim().split('\r\n').length, 4, all);
  await op.goto(`${url}/user?name=${encodeURIComponent(XSS)}`);
  await op.goto(`${url}/health`);
  assert.match((await op.textContent('#health')) ?? '', /e2e \(management, attached\)/);
  await shot(op, 'health');

  // a viewer: no button, and a forged POST (with or without a CSRF token) is refused
  const viewerContext = await browser.newContext();
  const viewer = await viewerContext.newPage();
  const viewerGuard = guard(viewer);
  await login(viewer, url, 'carol', 'viewer-pw');
  await viewer.waitForFunction(() => document.querySelectorAll('#live-rows tr[data-session]').length === 2, undefined, { timeout: 30_000 });
  assert.equal(await viewer.locator('form.kill').count(), 0, 'no disconnect button for a viewer');
  await op.goto(url);
  const row = op.locator('#live-rows tr', { has: op.locator('td.name', { hasText: /^alice$/ }) });
  const aliceId = await row.getAttribute('data-session');
  assert.ok(aliceId);
  // plain script text: the test's own code is transformed for Node, not for the page
  const forge = (withToken: boolean) => `(async () => {
    const csrf = document.querySelector('input[name=_csrf]').value;
    const body = new URLSearchParams({ id: ${JSON.stringify(aliceId)}, reason: 'forged' });
    if (${withToken}) body.set('_csrf', csrf);
    return (await fetch('/kill', { method: 'POST', body })).status;
  })()`;
  assert.equal(await viewer.evaluate(forge(true)), 403, "a viewer's POST with its own CSRF token");
  assert.equal(await viewer.evaluate(forge(false)), 403, "a viewer's POST without a token");
  // the operator without the token: 403 too
  const noCsrf = await op.evaluate(forge(false));
  assert.equal(noCsrf, 403);
  assert.equal(alice!.running, true, 'alice is still connected');

  // the operator disconnects alice with a reason
  await row.locator('input[name=reason]').fill('lost laptop');
  await shot(op, 'kill');
  await row.locator('button').click();
  await op.waitForSelector('.notice');
  await alice!.exited;
  await op.waitForFunction(() => document.querySelectorAll('#live-rows tr[data-session]').length === 1, undefined, { timeout: 60_000 });
  const record = await waitFor('the killed record', () => {
    const d = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return d.prepare("SELECT end_reason FROM sessions WHERE common_name = 'alice' AND ended_at IS NOT NULL").get() as { end_reason: string } | undefined;
    } finally {
      d.close();
    }
  });
  assert.equal(record.end_reason, 'killed');
  const lines = readFileSync(audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const kill = lines.find((l) => l.action === 'kill');
  assert.equal(kill?.user, 'olga');
  assert.equal(kill?.reason, 'lost laptop');
  assert.equal(kill?.commonName, 'alice');
  assert.ok(lines.filter((l) => l.action === 'refused').length >= 3, 'the forged posts are in the audit log');
  assert.ok(lines.some((l) => l.action === 'login' && l.user === 'carol' && l.role === 'viewer'));

  // nothing the names carried ran, anywhere
  assert.equal(await opGuard.pwned(), undefined);
  assert.equal(await viewerGuard.pwned(), undefined);
  assert.deepEqual([...opGuard.errors, ...viewerGuard.errors], []);

  // wrong passwords: rate-limited (last: it locks this address out for a while)
  const guesser = await (await browser.newContext()).newPage();
  for (let i = 0; i < 5; i++) {
    await login(guesser, url, 'olga', `guess-${i}`);
    await guesser.waitForSelector('.notice');
    assert.match((await guesser.textContent('.notice')) ?? '', /Wrong user or password/);
  }
  await login(guesser, url, 'olga', 'operator-pw');
  await guesser.waitForSelector('.notice');
  assert.match((await guesser.textContent('.notice')) ?? '', /Too many failed logins/);
  await shot(guesser, 'login-locked');
  const audited = readFileSync(audit, 'utf8');
  assert.equal(audited.match(/"action":"login-failed"/g)?.length, 5);
  assert.match(audited, /"action":"login-locked"/);
  await Promise.all([xss!.stop()]);
});

test('load time of the live page with 1,000 live clients (a stand-in control socket)', { timeout: 300_000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'fxs-console-load-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'control.sock');
  const since = new Date().toISOString();
  const sessions = Array.from({ length: 1000 }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    via: 'management',
    instance: i % 2 ? 'office' : 'lab',
    commonName: `client-${i}`,
    username: i % 3 ? undefined : `user${i}`,
    realAddress: `198.51.${Math.floor(i / 250)}.${i % 250}`,
    realPort: 40000 + i,
    vpnAddress: `10.8.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    since,
    bytesReceived: i * 1000,
    bytesSent: i * 2000,
    groups: ['staff'],
  }));
  const health = { ok: true, startedAt: since, instances: [], sessions: 1000, queue: { queued: 0, concurrency: 256 }, killAllowed: true };
  const open = new Set<Socket>();
  const server = createServer((c) => {
    open.add(c);
    c.once('close', () => open.delete(c));
    c.once('data', (d) => {
      const { command } = JSON.parse(String(d)) as { command: string };
      if (command === 'watch') return void c.write('{"ok":true,"watching":[]}\n');
      c.end(`${JSON.stringify(command === 'status' ? { ok: true, sessions } : health)}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  // the console's watch stays open: end it, or close() waits for it
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const c of open) c.destroy();
        server.close(() => resolve());
      }),
  );
  const usersFile = join(dir, 'users');
  writeFileSync(usersFile, `olga:${await hashPassword('pw')}:operator\n`);
  const configPath = join(dir, 'flexscript.yaml');
  writeFileSync(
    configPath,
    [
      'instance: lab',
      'control:',
      `  socket: ${socket}`,
      'console:',
      '  auth:',
      `    users-file: ${usersFile}`,
      `  audit-log: ${join(dir, 'audit.jsonl')}`,
      '',
    ].join('\n'),
  );
  const consoleProcess = await startConsole(['--config', configPath, '--listen', `127.0.0.1:${await freeLoopbackPort()}`]);
  t.after(consoleProcess.stop);
  const { url } = consoleProcess;
  const browser = await launch(t);
  const page = await browser.newPage();
  await login(page, url, 'olga', 'pw');
  await page.waitForSelector('#live');
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    await page.goto(url, { waitUntil: 'load' });
    times.push(performance.now() - start);
  }
  assert.equal(await page.locator('#live-rows tr[data-session]').count(), 1000);
  times.sort((a, b) => a - b);
  const median = times[2]!;
  const report = `live page with 1000 clients: median load ${median.toFixed(0)} ms (of 5: ${times.map((x) => x.toFixed(0)).join(', ')} ms)`;
  t.diagnostic(report);
  writeFileSync(join(ARTIFACTS, 'load-time.txt'), `${report}\n`);
  assert.ok(median < 10_000, report);
});

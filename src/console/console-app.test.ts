import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../logger.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { hashPassword } from '../util/password-hash.ts';
import type { AuditEntry } from './audit-log.ts';
import { clientAddress, CONTENT_SECURITY_POLICY, createConsoleApp, parseWhen } from './console-app.ts';
import { parseConsoleUsers } from './console-users.ts';
import { csvCell } from './csv.ts';
import type { ControlSession, DaemonLink, Health } from './daemon-link.ts';
import { OidcLogin } from './oidc-login.ts';

const log = createLogger('silent');
const XSS = '<img src=x onerror="globalThis.pwned=1">';
const FORMULA = '=HYPERLINK("http://x","y")';
const PEER = { incoming: { socket: { remoteAddress: '192.0.2.10' } } };

let hashes: Promise<Record<string, string>> | undefined;
const users = () => (hashes ??= Promise.all([hashPassword('viewer-pw'), hashPassword('operator-pw')]).then(([v, o]) => ({ v: v!, o: o! })));

async function setup(
  t: TestContext,
  o: { live?: ControlSession[]; trustedProxies?: string[]; killAllowed?: boolean; oidc?: OidcLogin; noUsers?: boolean } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new SqliteStore(join(dir, 'store.db'));
  t.after(() => store.close());
  const now = Date.now();
  for (const [i, cn] of ['alice', XSS, FORMULA].entries()) {
    await store.openSession({ id: `s${i}`, instance: 'vpn', commonName: cn, realAddress: '198.51.100.1', realPort: 1000 + i, startedAt: now - 3_600_000 + i });
  }
  await store.closeSession('s0', undefined, { endedAt: now - 60_000, duration: 3540, bytesIn: 10, bytesOut: 20, reason: 'killed' });
  const h = await users();
  const table = parseConsoleUsers(`# console users\ncarol:${h.v}:viewer\nolga:${h.o}:operator\n`, 'users');
  const kills: { id: string; reason: string; by: string }[] = [];
  const audit: AuditEntry[] = [];
  const live = o.live ?? [
    {
      id: 'live-1',
      via: 'management',
      instance: 'vpn',
      commonName: XSS,
      realAddress: '198.51.100.9',
      realPort: 5000,
      vpnAddress: '10.8.0.6',
      since: new Date(now).toISOString(),
      bytesReceived: 1,
      bytesSent: 2,
    },
  ];
  const daemon: DaemonLink = {
    status: async () => live,
    health: async (): Promise<Health> => ({
      ok: true,
      startedAt: new Date(now).toISOString(),
      instances: [],
      sessions: live.length,
      queue: { queued: 0, concurrency: 8 },
      killAllowed: o.killAllowed ?? true,
    }),
    kill: async (id, reason, by) => void kills.push({ id, reason, by }),
    watch: async () => ({ closed: new Promise(() => {}), close: () => {} }),
  };
  const { verifyPassword } = await import('../util/password-hash.ts');
  const app = createConsoleApp({
    daemon,
    store,
    ...(o.noUsers
      ? {}
      : {
          users: {
            verify: async (name: string, pw: string) => {
              const u = table.get(name);
              return u && (await verifyPassword(u.hash, pw)) ? u.role : undefined;
            },
          },
        }),
    ...(o.oidc ? { oidc: o.oidc } : {}),
    audit: { write: async (e) => void audit.push(e) },
    log,
    trustedProxies: o.trustedProxies ?? [],
    tls: false,
    idleMs: 60_000,
    plugins: [{ use: 'session-limit', options: { max: 2, groups: { admins: 5 } } }],
  });
  const request = (path: string, init: RequestInit = {}, env = PEER) => app.request(path, init, env);
  /** A login form's CSRF cookie and token. */
  const loginToken = async () => {
    const r = await request('/login');
    const cookie = /fxs_login=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
    return cookie;
  };
  const login = async (user: string, password: string, env = PEER) => {
    const token = await loginToken();
    return request(
      '/login',
      {
        method: 'POST',
        headers: { cookie: `fxs_login=${token}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: token, user, password }),
      },
      env,
    );
  };
  const session = async (user: string, password: string) => {
    const r = await login(user, password);
    assert.equal(r.status, 303, await r.text());
    const cookie = /fxs_console=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
    const page = await (await request('/', { headers: { cookie: `fxs_console=${cookie}` } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
    const get = (path: string) => request(path, { headers: { cookie: `fxs_console=${cookie}` } });
    const post = (path: string, form: Record<string, string>) =>
      request(path, {
        method: 'POST',
        headers: { cookie: `fxs_console=${cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form),
      });
    return { cookie, csrf, get, post, page };
  };
  return { request, login, session, kills, audit };
}

test('every answer carries the strict headers; pages need a login', async (t) => {
  const c = await setup(t);
  for (const path of ['/', '/login', '/history', '/static/console.js', '/nope']) {
    const r = await c.request(path);
    assert.equal(r.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
  }
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*/);
  const home = await c.request('/');
  assert.equal(home.status, 303);
  assert.equal(home.headers.get('location'), '/login');
  assert.equal((await c.request('/live/rows')).status, 401);
  assert.equal((await c.request('/history.csv')).status, 401);
  assert.equal((await c.request('/kill', { method: 'POST' })).status, 401);
  const page = await (await c.request('/login')).text();
  assert.doesNotMatch(page, /<script>|<style>| on[a-z]+=/i, 'no inline script, style or handler');
});

test('login: a CSRF token is needed, cookies are HttpOnly and SameSite=Strict, Secure behind an https proxy', async (t) => {
  const c = await setup(t, { trustedProxies: ['192.0.2.10'] });
  const noToken = await c.request('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'user=olga&password=operator-pw',
  });
  assert.equal(noToken.status, 403);
  assert.equal(c.audit.at(-1)?.action, 'refused');
  const ok = await c.login('olga', 'operator-pw');
  assert.equal(ok.status, 303);
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, /fxs_console=[A-Za-z0-9_-]{43};/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.doesNotMatch(cookie, /Secure/, 'plain http from the proxy');
  const proxied = await c.login('olga', 'operator-pw', { incoming: { socket: { remoteAddress: '192.0.2.10' } } });
  assert.equal(proxied.status, 303);
  const viaHttps = await (async () => {
    const r = await c.request('/login', { headers: { 'x-forwarded-proto': 'https' } });
    return r.headers.get('set-cookie') ?? '';
  })();
  assert.match(viaHttps, /Secure/, 'https at a trusted proxy makes cookies Secure');
  const untrusted = await c.request('/login', { headers: { 'x-forwarded-proto': 'https' } }, { incoming: { socket: { remoteAddress: '203.0.113.5' } } });
  assert.doesNotMatch(untrusted.headers.get('set-cookie') ?? '', /Secure/, 'an untrusted peer cannot claim https');
  assert.deepEqual(
    c.audit.filter((e) => e.action === 'login').map((e) => [e.user, e.role, e.from]),
    [
      ['olga', 'operator', '192.0.2.10'],
      ['olga', 'operator', '192.0.2.10'],
    ],
  );
});

test('wrong passwords are rate-limited and audited; the lockout holds even for the right password', async (t) => {
  const c = await setup(t);
  for (let i = 0; i < 5; i++) assert.equal((await c.login('olga', `wrong-${i}`)).status, 401);
  const locked = await c.login('olga', 'operator-pw');
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.match(await locked.text(), /Too many failed logins/);
  assert.equal(c.audit.filter((e) => e.action === 'login-failed').length, 5);
  assert.equal(c.audit.at(-1)?.action, 'login-locked');
  assert.equal(c.audit.filter((e) => e.action === 'login').length, 0);
});

test('hostile names are shown as text on every page, in the live rows and as CSV cells that cannot run', async (t) => {
  const c = await setup(t);
  const s = await c.session('carol', 'viewer-pw');
  for (const path of ['/', '/live/rows', '/history', `/user?name=${encodeURIComponent(XSS)}`, '/denials', '/health']) {
    const text = await (await s.get(path)).text();
    assert.ok(!text.includes(XSS), `${path}: the raw name is not in the page`);
    if (path !== '/denials' && path !== '/health') assert.ok(text.includes('&lt;img src=x onerror=&quot;globalThis.pwned=1&quot;&gt;'), `${path}: escaped`);
  }
  const csv = await (await s.get('/history.csv')).text();
  assert.ok(csv.includes(`"'=HYPERLINK(""http://x"",""y"")"`), csv);
  assert.ok(csv.split('\r\n')[0]!.startsWith('instance,common_name,'));
  const filtered = await (await s.get('/history.csv?user=alice&ended=killed')).text();
  assert.equal(filtered.trim().split('\r\n').length, 2, filtered);
  assert.match(filtered, /\r\nvpn,alice,.*,killed,/);
  const page = await (await s.get('/history?ended=killed')).text();
  assert.match(page, /<span id="history-count">1<\/span>/);
});

test('a viewer sees no disconnect button and a forged POST is refused; an operator disconnects with a reason, audited', async (t) => {
  const c = await setup(t);
  const viewer = await c.session('carol', 'viewer-pw');
  assert.doesNotMatch(viewer.page, /action="\/kill"/);
  const forged = await viewer.post('/kill', { _csrf: viewer.csrf, id: 'live-1', reason: 'x' });
  assert.equal(forged.status, 403);
  assert.deepEqual(c.kills, []);
  assert.equal(c.audit.at(-1)?.action, 'refused');

  const op = await c.session('olga', 'operator-pw');
  assert.match(op.page, /action="\/kill"/);
  assert.equal((await op.post('/kill', { id: 'live-1', reason: 'no token' })).status, 403, 'CSRF token missing');
  assert.equal((await op.post('/kill', { _csrf: viewer.csrf, id: 'live-1', reason: 'wrong token' })).status, 403, "another session's token");
  assert.deepEqual(c.kills, []);
  const done = await op.post('/kill', { _csrf: op.csrf, id: 'live-1', reason: 'lost laptop' });
  assert.equal(done.status, 303);
  assert.deepEqual(c.kills, [{ id: 'live-1', reason: 'lost laptop', by: 'olga' }]);
  const entry = c.audit.at(-1)!;
  assert.equal(entry.action, 'kill');
  assert.equal(entry.reason, 'lost laptop');
  assert.equal(entry.commonName, XSS);
});

test('no disconnect button when the daemon does not allow kills', async (t) => {
  const c = await setup(t, { killAllowed: false });
  const op = await c.session('olga', 'operator-pw');
  assert.doesNotMatch(op.page, /action="\/kill"/);
});

test('the user page shows the session limit that applies', async (t) => {
  const c = await setup(t);
  const s = await c.session('carol', 'viewer-pw');
  const page = await (await s.get('/user?name=alice')).text();
  assert.match(page, /2 at once/);
  assert.match(page, /killed/);
});

test('client address: X-Forwarded-For is believed from trusted proxies only, nearest untrusted hop first', () => {
  assert.equal(clientAddress('203.0.113.5', '10.0.0.1', ['127.0.0.1']), '203.0.113.5');
  assert.equal(clientAddress('127.0.0.1', '198.51.100.7, 10.0.0.2', ['127.0.0.1', '10.0.0.2']), '198.51.100.7');
  assert.equal(clientAddress('::ffff:127.0.0.1', 'evil, 198.51.100.7', ['127.0.0.1']), '198.51.100.7');
  assert.equal(clientAddress('127.0.0.1', 'not-an-address', ['127.0.0.1']), '127.0.0.1');
});

test('CSV cells that start like a formula are defused; quotes and commas are quoted', () => {
  for (const bad of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx']) assert.ok(csvCell(bad).replace(/^"/, '').startsWith("'"), bad);
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell(-5), '-5', 'numbers stay numbers');
  assert.equal(csvCell(undefined), '');
});

test('console users file: roles, refused lines name the line and never the hash', async () => {
  const { o } = await users();
  assert.equal(parseConsoleUsers(`olga:${o}:operator`, 'f').get('olga')?.role, 'operator');
  assert.throws(() => parseConsoleUsers(`olga:${o}:admin`, 'f'), /f:1: the role/);
  assert.throws(
    () => parseConsoleUsers('\nolga:plain:viewer', 'f'),
    (err: Error) => /f:2: unsupported hash/.test(err.message) && !err.message.includes('plain'),
  );
  assert.throws(() => parseConsoleUsers(`olga:${o}:viewer\nolga:${o}:viewer`, 'f'), /listed twice/);
});

test('times: relative, ISO (UTC unless a zone is given), empty, and a clear error', () => {
  const now = Date.UTC(2026, 10, 30, 12);
  assert.equal(parseWhen('2h', now), now - 7_200_000);
  assert.equal(parseWhen('2026-11-30T10:00', now), Date.UTC(2026, 10, 30, 10));
  assert.equal(parseWhen('', now), undefined);
  assert.throws(() => parseWhen('yesterday', now), /not a time/);
});

/** A provider login whose code exchange answers with the claims given for the code. */
function providerLogin(claimsByCode: Record<string, Record<string, unknown>>, up = true): OidcLogin {
  return new OidcLogin({
    provider: {
      issuer: 'https://idp.example',
      authorizationUrl: async (login) => {
        if (!up) throw new Error('connect ECONNREFUSED');
        return new URL(`https://idp.example/auth?state=${login.state}`);
      },
      exchange: async (query) => {
        const claims = claimsByCode[query.get('code') ?? ''];
        if (!claims) throw new Error('invalid_grant');
        return claims;
      },
    },
    rules: { usernameClaim: 'preferred_username', groupsClaim: 'groups', roles: { operator: ['ops'], viewer: ['view'] } },
    ttlMs: 600_000,
  });
}

test('provider login: the same Strict session with the role, audited with the subject; a user in no group, a replay and a foreign browser are refused and counted', async (t) => {
  const oidc = providerLogin({
    op: { sub: 'sub-ann', preferred_username: 'ann', groups: ['ops'] },
    view: { sub: 'sub-vic', preferred_username: 'vic', groups: ['view'] },
    none: { sub: 'sub-bo', preferred_username: 'bo', groups: ['staff'] },
  });
  const c = await setup(t, { oidc });
  const page = await (await c.request('/login')).text();
  assert.match(page, /name="password"/, 'the password form');
  assert.match(page, /<a id="oidc-login" class="button" href="\/login\/oidc">Log in through idp\.example<\/a>/, 'and the provider');
  /** The link, the provider's redirect back with `code`; the answer and the cookies. */
  const through = async (code: string) => {
    const start = await c.request('/login/oidc');
    assert.equal(start.status, 303);
    const to = new URL(start.headers.get('location')!);
    assert.equal(to.origin, 'https://idp.example');
    const bind = start.headers.get('set-cookie') ?? '';
    assert.match(bind, /fxs_oidc=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/login\/oidc; HttpOnly; SameSite=Lax/);
    const browser = /fxs_oidc=([^;]+)/.exec(bind)![1]!;
    const back = `/login/oidc/callback?code=${code}&state=${to.searchParams.get('state')}`;
    const r = await c.request(back, { headers: { cookie: `fxs_oidc=${browser}` } });
    return { r, back, browser };
  };

  const op = await through('op');
  assert.equal(op.r.status, 200);
  assert.match(await op.r.text(), /<meta http-equiv="refresh" content="0;url=\/">/);
  const cookies = op.r.headers.get('set-cookie') ?? '';
  assert.match(cookies, /fxs_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict/);
  const session = /fxs_console=([^;]+)/.exec(cookies)![1]!;
  const live = await (await c.request('/', { headers: { cookie: `fxs_console=${session}` } })).text();
  assert.match(live, /ann \(operator\)/);
  assert.match(live, /form method="post" action="\/kill"/, 'an operator has the button');
  assert.deepEqual(c.audit.at(-1), {
    action: 'login',
    method: 'oidc',
    issuer: 'https://idp.example',
    user: 'ann',
    role: 'operator',
    subject: 'sub-ann',
    from: '192.0.2.10',
  });

  const view = await through('view');
  const viewSession = /fxs_console=([^;]+)/.exec(view.r.headers.get('set-cookie') ?? '')![1]!;
  const viewPage = await (await c.request('/', { headers: { cookie: `fxs_console=${viewSession}` } })).text();
  assert.match(viewPage, /vic \(viewer\)/);
  assert.doesNotMatch(viewPage, /action="\/kill"/);

  const none = await through('none');
  assert.equal(none.r.status, 403);
  assert.match(await none.r.text(), /signed in at the identity provider as bo, but that account is in none of the groups that may use this console/);
  assert.doesNotMatch(none.r.headers.get('set-cookie') ?? '', /fxs_console=[A-Za-z0-9]/);
  assert.deepEqual(c.audit.at(-1), {
    action: 'login-failed',
    method: 'oidc',
    issuer: 'https://idp.example',
    user: 'bo',
    subject: 'sub-bo',
    reason: 'bo is in none of the groups that may use this console',
    from: '192.0.2.10',
  });

  const replay = await c.request(op.back, { headers: { cookie: `fxs_oidc=${op.browser}` } });
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /already completed \(a replayed callback\)/);
  assert.doesNotMatch(replay.headers.get('set-cookie') ?? '', /fxs_console=[A-Za-z0-9]/);

  // the right state in a browser without the cookie (a link sent to someone else)
  const start = await c.request('/login/oidc');
  const state = new URL(start.headers.get('location')!).searchParams.get('state');
  const foreign = await c.request(`/login/oidc/callback?code=op&state=${state}`);
  assert.equal(foreign.status, 400);
  assert.match(await foreign.text(), /another browser/);

  // failures count against the address: after five, even a good login waits
  await through('none');
  await through('none');
  const locked = await c.request('/login/oidc');
  assert.equal(locked.status, 429);
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.equal(c.audit.at(-1)?.action, 'login-locked');
});

test('provider login only (no users file): no password form, a password POST is refused; a provider that is down is a clear page', async (t) => {
  const c = await setup(t, { oidc: providerLogin({}, false), noUsers: true });
  const page = await (await c.request('/login')).text();
  assert.doesNotMatch(page, /name="password"/);
  assert.match(page, /id="oidc-login"/);
  assert.equal((await c.login('olga', 'operator-pw')).status, 404);
  const down = await c.request('/login/oidc');
  assert.equal(down.status, 502);
  assert.match(await down.text(), /The identity provider is unreachable \(connect ECONNREFUSED\)/);
  const none = await setup(t);
  assert.equal((await none.request('/login/oidc')).status, 404, 'no provider configured');
});

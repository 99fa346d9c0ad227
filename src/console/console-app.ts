/**
 * @module console-app
 * The console's routes (a Hono app, so tests call it without a socket): logging in (a users
 * file's password, an OpenID Connect provider, or both) and out, the pages, the live rows and
 * their server-sent events, CSV export and the one action, disconnecting a client. Security in
 * one place: strict headers on every answer, a session cookie, a CSRF token checked on every
 * POST, rate-limited logins, the operator role for kills, and an audit line for every login,
 * failure and action.
 */
import { isIP } from 'node:net';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { streamSSE } from 'hono/streaming';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { SessionRecord, Store } from '../store/store.ts';
import { addressKey, RateLimiter } from '../util/rate-limit.ts';
import type { AuditEntry } from './audit-log.ts';
import { barChart, buckets } from './chart.ts';
import type { Role } from './console-users.ts';
import { csvLine } from './csv.ts';
import type { ControlSession, DaemonLink } from './daemon-link.ts';
import type { LiveFeed } from './live-feed.ts';
import type { OidcLogin } from './oidc-login.ts';
import { CONSOLE_CSS, CONSOLE_SCRIPT } from './static-assets.ts';
import { firewallSetsOf, sessionLimitOf } from './user-facts.ts';
import {
  bytes,
  continuePage,
  denialsPage,
  errorPage,
  healthPage,
  historyPage,
  type HistoryFilter,
  livePage,
  liveRows,
  loginPage,
  userPage,
  type Viewer,
} from './views.ts';
import { newToken, sameToken, type WebSession, WebSessions } from './web-sessions.ts';

export interface ConsoleDeps {
  /** The daemon's control socket; absent when the config has no control: section. */
  readonly daemon?: DaemonLink;
  readonly feed?: LiveFeed;
  /** The store, opened read-only; absent without a store: section. */
  readonly store?: Store;
  /** The users file; absent when only a provider logs operators in. */
  readonly users?: { verify(name: string, password: string): Promise<Role | undefined> };
  /** Logging in through an OpenID Connect provider, when configured. */
  readonly oidc?: OidcLogin;
  readonly audit: { write(entry: AuditEntry): Promise<void> };
  readonly log: Logger;
  /** Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed. */
  readonly trustedProxies: readonly string[];
  /** The console itself serves TLS: cookies are Secure. */
  readonly tls: boolean;
  readonly idleMs: number;
  /** The plugins as the config lists them (for the user page's limits and firewall sets). */
  readonly plugins: readonly { readonly use?: string; readonly options?: unknown }[];
  readonly now?: () => number;
}

const SESSION_COOKIE = 'fxs_console';
const LOGIN_COOKIE = 'fxs_login';
/** Ties the provider's redirect to the browser that started the login. */
const OIDC_COOKIE = 'fxs_oidc';
const MAX_FORM_BYTES = 16 * 1024;
const MAX_ROWS = 5000;

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Failed logins: 5 in a burst per user name and per address, then 30 s, doubling up to 15 min. */
const LOGIN_LIMITS = { failures: 5, window: 5 * 60_000, lockout: 30_000, maxLockout: 15 * 60_000, maxKeys: 10_000 };

type Env = { Bindings: { incoming?: { socket?: { remoteAddress?: string } } }; Variables: { session: WebSession; from: string; https: boolean } };

/** `2h`, `30m`, `7d` (ago), or an ISO date/time; undefined for an empty field. */
export function parseWhen(text: string, now: number): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const rel = /^(\d+)\s*(m|h|d)$/.exec(t);
  if (rel) return now - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(t) || !t.includes('T') ? t : `${t}Z`);
  if (Number.isNaN(ms)) throw new Error(`${JSON.stringify(t.slice(0, 64))} is not a time: give e.g. 2h, 7d or 2026-11-28T10:00 (UTC)`);
  return ms;
}

/** The client address: the peer, or through trusted proxies the nearest untrusted X-Forwarded-For entry. */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: readonly string[]): string {
  const norm = (a: string) => a.trim().replace(/^::ffff:/, '');
  const isTrusted = (a: string) => trusted.includes(norm(a));
  if (!isTrusted(peer) || !forwardedFor) return norm(peer);
  const hops = forwardedFor.split(',').map(norm).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return norm(peer);
    if (!isTrusted(hop)) return hop;
  }
  return hops[0] ?? norm(peer);
}

export function createConsoleApp(deps: ConsoleDeps): Hono<Env> {
  const now = deps.now ?? Date.now;
  const sessions = new WebSessions(deps.idleMs, now);
  const byUser = new RateLimiter(LOGIN_LIMITS, now);
  const byAddress = new RateLimiter(LOGIN_LIMITS, now);
  const app = new Hono<Env>();

  const audit = (c: Context<Env>, entry: Omit<AuditEntry, 'from'>) => deps.audit.write({ ...entry, from: c.get('from') } as AuditEntry);
  const cookieOptions = (c: Context<Env>) => ({ httpOnly: true, secure: c.get('https'), sameSite: 'Strict' as const, path: '/' });
  const viewerOf = (c: Context<Env>): Viewer => {
    const s = c.get('session');
    return { user: s.user, role: s.role, csrf: s.csrf };
  };

  app.use('*', async (c, next) => {
    const peer = c.env?.incoming?.socket?.remoteAddress ?? '';
    const viaProxy = deps.trustedProxies.includes(peer.replace(/^::ffff:/, ''));
    c.set('from', clientAddress(peer, c.req.header('x-forwarded-for'), deps.trustedProxies));
    c.set('https', deps.tls || (viaProxy && c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https'));
    await next();
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: with no-referrer a form's POST carries Origin: null and SameSite=Strict cookies stay home
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    if (c.get('https')) c.header('Strict-Transport-Security', 'max-age=31536000');
  });

  app.get('/static/console.js', (c) => c.body(CONSOLE_SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }));
  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/static/console.css', (c) => c.body(CONSOLE_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' }));

  /** The POST's form fields, refused when too large. */
  const formOf = async (c: Context<Env>): Promise<Record<string, string>> => {
    if (Number(c.req.header('content-length') ?? 0) > MAX_FORM_BYTES) throw new Error('form too large');
    const body = await c.req.parseBody();
    return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === 'string' ? v : '']));
  };

  const loginWays = { password: deps.users !== undefined, ...(deps.oidc ? { provider: new URL(deps.oidc.issuer).host } : {}) };
  const loginForm = (c: Context<Env>, status: 200 | 400 | 401 | 403 | 404 | 429 | 502, problem?: string) => {
    // one token per browser until it logs in: a second login page (another tab, a redirect of
    // a background request) must not invalidate the form already shown
    const kept = getCookie(c, LOGIN_COOKIE);
    const token = kept !== undefined && /^[A-Za-z0-9_-]{43}$/.test(kept) ? kept : newToken();
    setCookie(c, LOGIN_COOKIE, token, { ...cookieOptions(c), maxAge: 3600 });
    return c.html(loginPage(token, loginWays, problem), status);
  };

  app.get('/login', (c) => loginForm(c, 200));

  app.post('/login', async (c) => {
    const form = await formOf(c).catch(() => undefined);
    if (!form || !sameToken(form._csrf, getCookie(c, LOGIN_COOKIE))) {
      await audit(c, { action: 'refused', what: 'login without a valid CSRF token' });
      return loginForm(c, 403, 'The form expired; log in again.');
    }
    const user = (form.user ?? '').slice(0, 256);
    const password = form.password ?? '';
    const from = c.get('from');
    const lock = [byUser.check(user), byAddress.check(addressKey(from))].find((l) => l.locked);
    if (lock?.locked) {
      await audit(c, { action: 'login-locked', user, retryAfterS: Math.ceil(lock.retryAfterMs / 1000) });
      c.header('Retry-After', String(Math.ceil(lock.retryAfterMs / 1000)));
      return loginForm(c, 429, `Too many failed logins; try again in ${Math.ceil(lock.retryAfterMs / 1000)} s.`);
    }
    if (!deps.users) return loginForm(c, 404, 'This console has no users file: log in through the identity provider.');
    const role = await deps.users.verify(user, password);
    if (!role) {
      byUser.failure(user);
      byAddress.failure(addressKey(from));
      await audit(c, { action: 'login-failed', method: 'password', user });
      return loginForm(c, 401, 'Wrong user or password.');
    }
    byUser.success(user);
    byAddress.success(addressKey(from));
    await audit(c, { action: 'login', method: 'password', user, role });
    deleteCookie(c, LOGIN_COOKIE, { path: '/' });
    setCookie(c, SESSION_COOKIE, sessions.start(user, role), cookieOptions(c));
    return c.redirect('/', 303);
  });

  /** The address is locked out after too many failed logins (either way). */
  const lockedOut = async (c: Context<Env>) => {
    const lock = byAddress.check(addressKey(c.get('from')));
    if (!lock.locked) return undefined;
    const s = Math.ceil(lock.retryAfterMs / 1000);
    await audit(c, { action: 'login-locked', method: 'oidc', retryAfterS: s });
    c.header('Retry-After', String(s));
    return loginForm(c, 429, `Too many failed logins; try again in ${s} s.`);
  };

  // logging in through the provider: a link (no form: CSP's form-action would stop the redirect to the provider)
  app.get('/login/oidc', async (c) => {
    const oidc = deps.oidc;
    if (!oidc) return loginForm(c, 404, 'This console has no identity provider configured.');
    const locked = await lockedOut(c);
    if (locked) return locked;
    let started: { url: string; browser: string };
    try {
      started = await oidc.start();
    } catch (err) {
      deps.log.warn({ issuer: oidc.issuer, err: errorMessage(err) }, 'identity provider unreachable');
      const other = deps.users ? ' or log in with a password' : '';
      return loginForm(c, 502, `The identity provider is unreachable (${errorMessage(err)}); try again later${other}.`);
    }
    // Lax: the provider's redirect back is a cross-site navigation, which Strict cookies do not follow
    setCookie(c, OIDC_COOKIE, started.browser, {
      httpOnly: true,
      secure: c.get('https'),
      sameSite: 'Lax',
      path: '/login/oidc',
      maxAge: Math.ceil(oidc.ttlMs / 1000),
    });
    return c.redirect(started.url, 303);
  });

  app.get('/login/oidc/callback', async (c) => {
    const oidc = deps.oidc;
    if (!oidc) return loginForm(c, 404, 'This console has no identity provider configured.');
    const locked = await lockedOut(c);
    if (locked) return locked;
    const browser = getCookie(c, OIDC_COOKIE);
    deleteCookie(c, OIDC_COOKIE, { path: '/login/oidc' });
    const outcome = await oidc.finish(new URL(c.req.url).searchParams, browser);
    if (!outcome.ok) {
      // a provider that failed is no one's fault; anything else counts against the address
      if (outcome.status !== 502) byAddress.failure(addressKey(c.get('from')));
      await audit(c, {
        action: 'login-failed',
        method: 'oidc',
        issuer: oidc.issuer,
        ...(outcome.user === undefined ? {} : { user: outcome.user }),
        ...(outcome.subject === undefined ? {} : { subject: outcome.subject }),
        reason: outcome.reason,
      });
      const text =
        outcome.user !== undefined && outcome.status === 403
          ? `You signed in at the identity provider as ${outcome.user}, but that account is in none of the groups that may use this console. Ask for the operator or viewer group, then log in again.`
          : `The login through the identity provider failed: ${outcome.reason}.`;
      return loginForm(c, outcome.status, text);
    }
    byAddress.success(addressKey(c.get('from')));
    await audit(c, { action: 'login', method: 'oidc', issuer: oidc.issuer, user: outcome.user, role: outcome.role, subject: outcome.subject });
    deleteCookie(c, LOGIN_COOKIE, { path: '/' });
    setCookie(c, SESSION_COOKIE, sessions.start(outcome.user, outcome.role), cookieOptions(c));
    // a page, not a redirect: the way here began at the provider (cross-site), and a redirect
    // in that chain would not carry the new SameSite=Strict cookie
    return c.html(continuePage(outcome.user));
  });

  // everything below needs a session
  app.use('*', async (c, next) => {
    const session = sessions.get(getCookie(c, SESSION_COOKIE));
    if (!session) {
      if (c.req.method === 'GET' && !['/live/rows', '/events', '/history.csv'].includes(c.req.path)) return c.redirect('/login', 303);
      return c.text('log in first', 401);
    }
    c.set('session', session);
    if (c.req.method === 'POST') {
      const form = await formOf(c).catch(() => undefined);
      if (!form || !sameToken(form._csrf, session.csrf)) {
        await audit(c, { action: 'refused', user: session.user, role: session.role, what: `${c.req.path} without a valid CSRF token` });
        return c.html(errorPage(403, 'This form is not valid any more (CSRF token missing or wrong). Go back, reload and try again.', viewerOf(c)), 403);
      }
    }
    await next();
  });

  app.post('/logout', async (c) => {
    const s = c.get('session');
    sessions.end(getCookie(c, SESSION_COOKIE));
    await audit(c, { action: 'logout', user: s.user, role: s.role });
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect('/login', 303);
  });

  /** Live clients and whether kills are possible; a daemon that cannot be asked is a problem on the page. */
  const live = async (): Promise<{ rows: readonly ControlSession[]; canKill: boolean; problem?: string }> => {
    if (!deps.daemon) return { rows: [], canKill: false, problem: 'The config has no control: section; live clients come from the daemon through it.' };
    try {
      const [rows, health] = await Promise.all([deps.daemon.status(), deps.daemon.health()]);
      return { rows, canKill: health.killAllowed };
    } catch (err) {
      return { rows: [], canKill: false, problem: errorMessage(err) };
    }
  };

  const charts = async () => {
    if (!deps.store) return html``;
    const to = Math.ceil(now() / 3_600_000) * 3_600_000;
    const from = to - 24 * 3_600_000;
    const recent = await deps.store.sessions({ since: from, limit: 100_000 }).catch(() => [] as SessionRecord[]);
    const hour = (i: number) => new Date(from + i * 3_600_000).toISOString().slice(11, 16);
    const connects = buckets(
      recent,
      (r) => r.startedAt,
      () => 1,
      from,
      to,
      24,
    );
    const traffic = buckets(
      recent,
      (r) => r.endedAt ?? -1,
      (r) => (r.bytesIn ?? 0) + (r.bytesOut ?? 0),
      from,
      to,
      24,
    );
    return html`${barChart(
      'Connects per hour, last 24 h',
      connects.map((value, i) => ({ label: `${hour(i)} UTC`, value })),
      (n) => String(n),
    )}
${barChart(
  'Traffic of sessions ended per hour, last 24 h',
  traffic.map((value, i) => ({ label: `${hour(i)} UTC`, value })),
  bytes,
)}`;
  };

  const NOTICES: Record<string, string> = { killed: 'The client was disconnected; the reason is in the audit log.' };

  app.get('/', async (c) => {
    const { rows, canKill, problem } = await live();
    const notice = problem ?? NOTICES[c.req.query('done') ?? ''];
    return c.html(livePage(rows, viewerOf(c), canKill, await charts(), notice));
  });

  app.get('/live/rows', async (c) => {
    const { rows, canKill } = await live();
    c.header('X-Live-Count', String(rows.length));
    return c.html(liveRows(rows, viewerOf(c), canKill));
  });

  app.get('/events', (c) => {
    const feed = deps.feed;
    if (!feed) return c.text('no control: section; no live updates', 503);
    return streamSSE(c, async (stream) => {
      let id = 0;
      const unsubscribe = feed.subscribe((e) => void stream.writeSSE({ event: e.kind, data: JSON.stringify(e.line), id: String(++id) }).catch(() => {}));
      const done = new Promise<void>((resolve) => stream.onAbort(resolve));
      const beat = setInterval(() => void stream.write(': beat\n\n').catch(() => {}), 15_000);
      await stream.writeSSE({ event: 'hello', data: '{}' });
      await done;
      clearInterval(beat);
      unsubscribe();
    });
  });

  /** The history filter from the query, and the records it selects. */
  const history = async (c: Context<Env>): Promise<{ filter: HistoryFilter; rows: SessionRecord[] }> => {
    const q = (k: string) => (c.req.query(k) ?? '').slice(0, 256);
    const filter: HistoryFilter = { user: q('user'), instance: q('instance'), since: q('since'), until: q('until'), ended: q('ended') };
    if (!deps.store) throw new Error('The config has no store: section; history comes from the accounting store.');
    const t = now();
    const rows = await deps.store.sessions({
      user: filter.user || undefined,
      instance: filter.instance || undefined,
      since: parseWhen(filter.since, t),
      until: parseWhen(filter.until, t),
      openOnly: filter.ended === 'connected',
      limit: filter.ended && filter.ended !== 'connected' ? MAX_ROWS * 4 : MAX_ROWS,
    });
    const ended = filter.ended && filter.ended !== 'connected' ? rows.filter((r) => r.endReason === filter.ended) : rows;
    return { filter, rows: ended.slice(0, MAX_ROWS) };
  };

  app.get('/history', async (c) => {
    const params = new URL(c.req.url).search;
    try {
      const { filter, rows } = await history(c);
      return c.html(historyPage(rows, filter, viewerOf(c), `/history.csv${params}`));
    } catch (err) {
      const empty = { user: '', instance: '', since: '', until: '', ended: '' };
      return c.html(historyPage([], empty, viewerOf(c), '/history.csv', errorMessage(err)), 400);
    }
  });

  app.get('/history.csv', async (c) => {
    let rows: SessionRecord[];
    try {
      rows = (await history(c)).rows;
    } catch (err) {
      return c.text(errorMessage(err), 400);
    }
    const head = csvLine([
      'instance',
      'common_name',
      'username',
      'real_address',
      'real_port',
      'vpn_address',
      'vpn_address6',
      'started',
      'ended',
      'duration_s',
      'bytes_in',
      'bytes_out',
      'ended_by',
      'groups',
    ]);
    const body = rows.map((r) =>
      csvLine([
        r.instance,
        r.commonName,
        r.username,
        r.realAddress,
        r.realPort,
        r.vpnAddress,
        r.vpnAddress6,
        new Date(r.startedAt).toISOString(),
        r.endedAt === undefined ? undefined : new Date(r.endedAt).toISOString(),
        r.duration,
        r.bytesIn,
        r.bytesOut,
        r.endReason,
        (r.groups ?? []).join(' '),
      ]),
    );
    return c.body(head + body.join(''), 200, {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="flexscript-sessions-${new Date(now()).toISOString().slice(0, 10)}.csv"`,
    });
  });

  app.get('/denials', async (c) => {
    if (!deps.store) return c.html(errorPage(503, 'The config has no store: section; denials are recorded there.', viewerOf(c)), 503);
    const rows = await deps.store.denials({ limit: MAX_ROWS });
    return c.html(denialsPage(rows, viewerOf(c)));
  });

  app.get('/user', async (c) => {
    const name = (c.req.query('name') ?? '').slice(0, 256);
    if (name === '') return c.redirect('/', 303);
    const [{ rows, canKill }, records] = await Promise.all([live(), deps.store ? deps.store.sessions({ user: name, limit: 500 }) : Promise.resolve([])]);
    const mine = rows.filter((s) => s.commonName === name || s.username === name);
    const groups = [...new Set([...mine.flatMap((s) => s.groups ?? []), ...(records[0]?.groups ?? [])])];
    const who = { name, groups };
    return c.html(
      userPage(
        { name, live: mine, sessions: records, groups, limit: sessionLimitOf(deps.plugins, who), firewallSets: firewallSetsOf(deps.plugins, who) },
        viewerOf(c),
        canKill,
      ),
    );
  });

  app.get('/health', async (c) => {
    const store = deps.store ? `${deps.store.kind}, read-only` : 'no store: section';
    if (!deps.daemon) return c.html(healthPage(undefined, undefined, store, viewerOf(c)));
    try {
      return c.html(healthPage(await deps.daemon.health(), undefined, store, viewerOf(c)));
    } catch (err) {
      return c.html(healthPage(undefined, errorMessage(err), store, viewerOf(c)), 503);
    }
  });

  app.post('/kill', async (c) => {
    const s = c.get('session');
    if (s.role !== 'operator') {
      await audit(c, { action: 'refused', user: s.user, role: s.role, what: 'kill needs the operator role' });
      return c.html(errorPage(403, 'Disconnecting clients needs the operator role.', viewerOf(c)), 403);
    }
    const form = await formOf(c);
    const id = (form.id ?? '').slice(0, 64);
    const reason = (form.reason ?? '').trim().slice(0, 200);
    if (!deps.daemon) return c.html(errorPage(503, 'The config has no control: section.', viewerOf(c)), 503);
    if (reason === '') return c.html(errorPage(400, 'Give a reason for the disconnect.', viewerOf(c)), 400);
    const target = (await deps.daemon.status().catch(() => [])).find((r) => r.id === id);
    const who = target && { instance: target.instance, commonName: target.commonName, username: target.username, realAddress: target.realAddress };
    try {
      await deps.daemon.kill(id, reason, s.user);
    } catch (err) {
      await audit(c, { action: 'kill-failed', user: s.user, role: s.role, session: id, ...who, reason, error: errorMessage(err) });
      return c.html(errorPage(502, `The client was not disconnected: ${errorMessage(err)}`, viewerOf(c)), 502);
    }
    await audit(c, { action: 'kill', user: s.user, role: s.role, session: id, ...who, reason });
    deps.log.info({ by: s.user, session: id, reason }, 'client disconnected from the console');
    return c.redirect('/?done=killed', 303);
  });

  app.notFound((c) => c.html(errorPage(404, 'No such page.'), 404));
  app.onError((err, c) => {
    deps.log.error({ err: errorMessage(err), path: c.req.path }, 'console request failed');
    return c.html(errorPage(500, 'The console failed to answer; see its log.'), 500);
  });
  return app;
}

/**
 * @module views
 * The console's pages, rendered on the server with hono/html: every interpolated value is
 * escaped, so a hostile common name or username is shown as the text it is. No inline script
 * and no inline style (the Content-Security-Policy forbids both): the page's behaviour comes
 * from /static/console.js, its look from /static/console.css.
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { DenialRecord, SessionRecord } from '../store/store.ts';
import type { ControlSession, Health } from './daemon-link.ts';
import type { Role } from './console-users.ts';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Who is looking: their name, role and the CSRF token their forms carry. */
export interface Viewer {
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** ISO time to `YYYY-MM-DD HH:MM:SS` UTC. */
const when = (ms: number | string | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));

const userLink = (name: string): Html => html`<a href="/user?name=${encodeURIComponent(name)}">${name}</a>`;

function layout(title: string, viewer: Viewer | undefined, body: Html, notice?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · flexscript console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<header>
  <strong>flexscript console</strong>
  ${
    viewer
      ? html`<nav><a href="/">Live</a> <a href="/history">History</a> <a href="/denials">Denials</a> <a href="/health">Health</a></nav>
  <form method="post" action="/logout" class="logout"><input type="hidden" name="_csrf" value="${viewer.csrf}"><span>${viewer.user} (${viewer.role})</span> <button>Log out</button></form>`
      : ''
  }
</header>
<main>
<h1>${title}</h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
${body}
</main>
</body>
</html>`;
}

/** How operators may log in: the users file's form, an identity provider's link (its host shown), or both. */
export interface LoginWays {
  readonly password: boolean;
  readonly provider?: string;
}

export function loginPage(csrf: string, ways: LoginWays, problem?: string): Html {
  return layout(
    'Log in',
    undefined,
    html`${
      ways.password
        ? html`<form method="post" action="/login" class="login">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label>User <input name="user" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button>Log in</button>
</form>`
        : ''
    }${ways.provider === undefined ? '' : html`<p class="sso"><a id="oidc-login" class="button" href="/login/oidc">Log in through ${ways.provider}</a></p>`}`,
    problem,
  );
}

/** After a provider login: the browser goes on to the live page from here (a same-site step). */
export function continuePage(user: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/">
<title>Logged in · flexscript console</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body>
<main>
<p id="continue">Logged in as ${user}. <a href="/">Continue to the console</a></p>
</main>
</body>
</html>`;
}

/** The rows of the live table; also what the page's script fetches to update it. */
export function liveRows(rows: readonly ControlSession[], viewer: Viewer, canKill: boolean): Html {
  if (rows.length === 0) return html`<tr><td colspan="9" class="empty">No client is connected.</td></tr>`;
  return html`${rows.map(
    (s) => html`<tr data-session="${s.id ?? ''}">
  <td>${s.instance}</td>
  <td class="name">${userLink(s.commonName)}</td>
  <td>${s.username === undefined ? '-' : userLink(s.username)}</td>
  <td>${(s.groups ?? []).join(', ') || '-'}</td>
  <td>${s.realAddress ?? '-'}${s.realPort === undefined ? '' : `:${s.realPort}`}</td>
  <td>${[s.vpnAddress, s.vpnAddress6].filter(Boolean).join(' ') || '-'}</td>
  <td>${when(s.since)}</td>
  <td>${bytes(s.bytesReceived)} / ${bytes(s.bytesSent)}</td>
  <td>${
    viewer.role === 'operator' && canKill && s.via === 'management' && s.id
      ? html`<form method="post" action="/kill" class="kill"><input type="hidden" name="_csrf" value="${viewer.csrf}"><input type="hidden" name="id" value="${s.id}"><input name="reason" placeholder="reason" required maxlength="200" aria-label="reason"><button>Disconnect</button></form>`
      : ''
  }</td>
</tr>`,
  )}`;
}

export function livePage(rows: readonly ControlSession[], viewer: Viewer, canKill: boolean, charts: Html, notice?: string): Html {
  return layout(
    'Live clients',
    viewer,
    html`<p><span id="live-count">${rows.length}</span> connected · <span id="live-state" aria-live="polite">live updates: connecting</span></p>
<table id="live">
<thead><tr><th>Instance</th><th>Name</th><th>User</th><th>Groups</th><th>Real address</th><th>VPN address</th><th>Since (UTC)</th><th>In / out</th><th></th></tr></thead>
<tbody id="live-rows">${liveRows(rows, viewer, canKill)}</tbody>
</table>
${charts}`,
    notice,
  );
}

export interface HistoryFilter {
  readonly user: string;
  readonly instance: string;
  readonly since: string;
  readonly until: string;
  readonly ended: string;
}

function sessionRows(rows: readonly SessionRecord[]): Html {
  if (rows.length === 0) return html`<tr><td colspan="9" class="empty">No session matches.</td></tr>`;
  return html`${rows.map(
    (r) => html`<tr>
  <td>${r.instance}</td>
  <td class="name">${userLink(r.commonName)}</td>
  <td>${r.username === undefined ? '-' : userLink(r.username)}</td>
  <td>${r.realAddress ?? '-'}</td>
  <td>${[r.vpnAddress, r.vpnAddress6].filter(Boolean).join(' ') || '-'}</td>
  <td>${when(r.startedAt)}</td>
  <td>${r.endedAt === undefined ? 'connected' : when(r.endedAt)}</td>
  <td>${bytes(r.bytesIn)} / ${bytes(r.bytesOut)}</td>
  <td class="ended">${r.endReason ?? '-'}</td>
</tr>`,
  )}`;
}

const SESSION_HEAD = raw(
  '<thead><tr><th>Instance</th><th>Name</th><th>User</th><th>Real address</th><th>VPN address</th><th>Start (UTC)</th><th>End (UTC)</th><th>In / out</th><th>Ended by</th></tr></thead>',
);

export function historyPage(rows: readonly SessionRecord[], f: HistoryFilter, viewer: Viewer, csvHref: string, problem?: string): Html {
  const opt = (v: string, label: string) => html`<option value="${v}" ${f.ended === v ? raw('selected') : ''}>${label}</option>`;
  return layout(
    'Session history',
    viewer,
    html`<form method="get" action="/history" class="filters">
  <label>User <input name="user" value="${f.user}"></label>
  <label>Instance <input name="instance" value="${f.instance}"></label>
  <label>Since <input name="since" value="${f.since}" placeholder="2h, 7d or 2026-11-28T10:00"></label>
  <label>Until <input name="until" value="${f.until}" placeholder="2h, 7d or 2026-11-28T10:00"></label>
  <label>Ended by <select name="ended">${opt('', 'any')}${opt('connected', 'still connected')}${opt('disconnect', 'disconnect')}${opt('killed', 'killed')}${opt('missed', 'missed')}</select></label>
  <button>Filter</button> <a href="${csvHref}" id="csv">CSV</a>
</form>
<p><span id="history-count">${rows.length}</span> session(s)</p>
<table id="history">${SESSION_HEAD}<tbody>${sessionRows(rows)}</tbody></table>`,
    problem,
  );
}

export function denialsPage(rows: readonly DenialRecord[], viewer: Viewer): Html {
  return layout(
    'Denials',
    viewer,
    html`<table id="denials">
<thead><tr><th>When (UTC)</th><th>Instance</th><th>Event</th><th>Name</th><th>User</th><th>From</th><th>Plugin</th><th>Reason</th></tr></thead>
<tbody>${
      rows.length === 0
        ? html`<tr><td colspan="8" class="empty">No denial recorded.</td></tr>`
        : rows.map(
            (d) =>
              html`<tr><td>${when(d.at)}</td><td>${d.instance}</td><td>${d.event}</td><td class="name">${d.commonName ?? '-'}</td><td>${d.username ?? '-'}</td><td>${d.realAddress ?? '-'}</td><td>${d.plugin ?? '-'}</td><td>${d.reason}</td></tr>`,
          )
    }</tbody></table>`,
  );
}

export interface UserFacts {
  readonly name: string;
  readonly live: readonly ControlSession[];
  readonly sessions: readonly SessionRecord[];
  readonly groups: readonly string[];
  /** The session limit that applies, and where it comes from. */
  readonly limit?: string;
  readonly firewallSets: readonly string[];
}

export function userPage(u: UserFacts, viewer: Viewer, canKill: boolean): Html {
  return layout(
    `User ${u.name}`,
    viewer,
    html`<dl class="facts">
  <dt>Groups</dt><dd id="user-groups">${u.groups.join(', ') || '-'}</dd>
  <dt>Session limit</dt><dd>${u.limit ?? 'none'}</dd>
  <dt>Firewall sets</dt><dd>${u.firewallSets.join(', ') || '-'}</dd>
</dl>
<h2>Connected now</h2>
<table><thead><tr><th>Instance</th><th>Name</th><th>User</th><th>Groups</th><th>Real address</th><th>VPN address</th><th>Since (UTC)</th><th>In / out</th><th></th></tr></thead>
<tbody>${liveRows(u.live, viewer, canKill)}</tbody></table>
<h2>Sessions</h2>
<table>${SESSION_HEAD}<tbody>${sessionRows(u.sessions)}</tbody></table>`,
  );
}

export function healthPage(h: Health | undefined, problem: string | undefined, store: string, viewer: Viewer): Html {
  return layout(
    'Daemon health',
    viewer,
    h
      ? html`<dl class="facts" id="health">
  <dt>Started</dt><dd>${when(h.startedAt)}</dd>
  <dt>Live sessions</dt><dd>${h.sessions}</dd>
  <dt>Instances</dt><dd>${h.instances.map((i) => html`<div>${i.name} (${i.via}${i.via === 'management' ? (i.attached ? ', attached' : ', NOT attached') : ''})</div>`)}</dd>
  <dt>Root stage</dt><dd>${h.root ? `${h.root.state}${h.root.tableReady ? ', firewall table in place' : ', firewall table NOT in place'}${h.root.problem ? `: ${h.root.problem}` : ''}` : 'not configured'}</dd>
  <dt>Store</dt><dd>${h.store?.kind ?? 'none'} (console: ${store})</dd>
  <dt>Event queue</dt><dd>${h.queue.queued} waiting, ${h.queue.concurrency} at once</dd>
  <dt>Disconnecting clients</dt><dd>${h.killAllowed ? 'allowed (control.allow-kill)' : 'not allowed (control.allow-kill is false)'}</dd>
</dl>`
      : html`<p class="problem">The daemon cannot be asked: ${problem ?? 'no control socket configured'}</p>`,
  );
}

export function errorPage(status: number, message: string, viewer?: Viewer): Html {
  return layout(`Error ${status}`, viewer, html`<p class="problem">${message}</p>`);
}

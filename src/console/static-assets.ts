/**
 * @module static-assets
 * The console's only script and stylesheet, served from /static/ (the Content-Security-Policy
 * allows scripts and styles from the console itself only). The script keeps the live table
 * current: it listens to /events (server-sent events relayed from the daemon's watch feed) and
 * fetches the table's rows again when a client came or left, and every 10 s for byte counts.
 * It puts only server-rendered, escaped HTML into the page, and event data only as text.
 */

export const CONSOLE_SCRIPT = `'use strict';
(() => {
  const rows = document.getElementById('live-rows');
  const state = document.getElementById('live-state');
  const count = document.getElementById('live-count');
  if (!rows || !state || !count) return;
  let timer;
  let busy = false;
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      const r = await fetch('/live/rows', { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const n = r.headers.get('x-live-count');
      // a form being typed into is left alone until it is sent
      if (rows.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return;
      const t = document.createElement('template');
      t.innerHTML = await r.text();
      rows.replaceChildren(t.content);
      if (n !== null) count.textContent = n;
    } catch (e) {
      state.textContent = 'live updates: ' + String(e && e.message ? e.message : e);
    } finally {
      busy = false;
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  };
  const events = new EventSource('/events');
  events.addEventListener('open', () => {
    state.textContent = 'live updates: on';
    soon();
  });
  events.addEventListener('client', (e) => {
    try {
      const line = JSON.parse(e.data);
      const d = line.data || {};
      state.textContent = 'live updates: on · last: ' + String(d.event || d.what || '') + ' ' + String(d.commonName === undefined ? '' : d.commonName);
    } catch {}
    soon();
  });
  events.addEventListener('daemon', soon);
  events.addEventListener('error', () => {
    state.textContent = 'live updates: reconnecting';
  });
  setInterval(refresh, 10000);
})();
`;

export const CONSOLE_CSS = `body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1em; background: #1f3b57; color: #fff; }
header a { color: #fff; margin-right: .8em; }
header .logout { margin-left: auto; }
main { padding: 0 1em 2em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
td.name { white-space: pre-wrap; word-break: break-all; max-width: 24em; }
.empty { color: #777; }
.notice { background: #eef6ee; border: 1px solid #9c9; padding: .4em .6em; }
.problem { background: #fbeeee; border: 1px solid #c99; padding: .4em .6em; }
form.filters label, form.login label { display: inline-block; margin: 0 .8em .4em 0; }
form.kill input { width: 9em; }
p.sso a.button { display: inline-block; padding: .4em .9em; border: 1px solid #1f3b57; border-radius: 3px; color: #1f3b57; text-decoration: none; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .3em 1em; }
dl.facts dt { font-weight: bold; }
figure.chart { display: inline-block; margin: 0 2em 1em 0; }
`;

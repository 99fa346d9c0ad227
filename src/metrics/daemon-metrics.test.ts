import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { decisions, pluginCalls, rootActions, type DecisionMessage } from '../observe/channels.ts';
import { DaemonMetrics } from './daemon-metrics.ts';

/** The value of one sample line, e.g. `flexscript_decisions_total{event="client-connect",verdict="deny"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

const decided = (event: string, source: 'hook' | 'management', verdict: 'accept' | 'deny'): DecisionMessage => ({ event, source, instance: 'a', verdict });

test('decisions count events by type and source, and verdicts only for events that can refuse', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  m.decision(decided('client-connect', 'hook', 'accept'));
  m.decision(decided('client-connect', 'hook', 'deny'));
  m.decision(decided('client-connect', 'management', 'deny'));
  m.decision(decided('client-disconnect', 'hook', 'accept'));
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_events_total', { event: 'client-connect', source: 'hook' }), 2);
  assert.equal(sample(text, 'flexscript_events_total', { event: 'client-connect', source: 'management' }), 1);
  assert.equal(sample(text, 'flexscript_events_total', { event: 'client-disconnect', source: 'hook' }), 1);
  assert.equal(sample(text, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'accept' }), 1);
  assert.equal(sample(text, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'deny' }), 2);
  assert.equal(sample(text, 'flexscript_decisions_total', { event: 'client-disconnect', verdict: 'accept' }), undefined);
});

test('events no plugin decided (malformed, a denied client leaving) are not counted', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  m.decision({ ...decided('client-disconnect', 'hook', 'accept'), unhandled: 'denied-client-left' });
  m.decision({ ...decided('client-connect', 'management', 'deny'), unhandled: 'malformed' });
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_events_total', { event: 'client-disconnect', source: 'hook' }), undefined);
  assert.equal(sample(text, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'deny' }), undefined);
});

test('plugin calls land in a histogram per plugin, event and outcome', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  m.pluginCall({ plugin: 'p', event: 'client-connect', ms: 3, outcome: 'ok' });
  m.pluginCall({ plugin: 'p', event: 'client-connect', ms: 2000, outcome: 'timeout' });
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_plugin_call_seconds_count', { plugin: 'p', event: 'client-connect', outcome: 'ok' }), 1);
  assert.equal(sample(text, 'flexscript_plugin_call_seconds_bucket', { le: '0.005', plugin: 'p', event: 'client-connect', outcome: 'ok' }), 1);
  assert.equal(sample(text, 'flexscript_plugin_call_seconds_bucket', { le: '1', plugin: 'p', event: 'client-connect', outcome: 'timeout' }), 0);
  assert.equal(sample(text, 'flexscript_plugin_call_seconds_sum', { plugin: 'p', event: 'client-connect', outcome: 'timeout' }), 2);
});

test('root actions count by action, errors by action and code', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  m.rootAction({ action: 'set-add', ms: 1 });
  m.rootAction({ action: 'set-add', ms: 1, code: 'FXS_ROOT_UNAVAILABLE' });
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_root_actions_total', { action: 'set-add' }), 2);
  assert.equal(sample(text, 'flexscript_root_errors_total', { action: 'set-add', code: 'FXS_ROOT_UNAVAILABLE' }), 1);
});

test('gauges read the daemon at scrape time', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  let sessions = [{ instance: 'a' }, { instance: 'a' }];
  let attached = true;
  let roundTrips = 5;
  m.bind({
    queued: () => 7,
    sessions: () => sessions,
    instances: () => ['a', 'b'],
    root: () => ({ starts: 3, state: 'backoff' }),
    management: () => [{ instance: 'b', attached }],
    store: () => ({ roundTrips }),
  });
  let text = await m.text();
  assert.equal(sample(text, 'flexscript_queue_depth'), 7);
  assert.equal(sample(text, 'flexscript_live_sessions', { instance: 'a' }), 2);
  assert.equal(sample(text, 'flexscript_live_sessions', { instance: 'b' }), 0, 'an instance with no client shows 0');
  assert.equal(sample(text, 'flexscript_root_stage_restarts'), 2);
  assert.equal(sample(text, 'flexscript_root_stage_up'), 0);
  assert.equal(sample(text, 'flexscript_management_connected', { instance: 'b' }), 1);
  assert.equal(sample(text, 'flexscript_store_round_trips_total'), 5);
  roundTrips = 9;
  assert.equal(sample(await m.text(), 'flexscript_store_round_trips_total'), 9);
  sessions = [];
  attached = false;
  text = await m.text();
  assert.equal(sample(text, 'flexscript_live_sessions', { instance: 'a' }), 0);
  assert.equal(sample(text, 'flexscript_management_connected', { instance: 'b' }), 0);
});

test('a private registry: two instances do not collide and nothing lands in the global one', async () => {
  const a = new DaemonMetrics();
  const b = new DaemonMetrics();
  a.decision(decided('up', 'hook', 'accept'));
  assert.equal(sample(await b.text(), 'flexscript_events_total', { event: 'up', source: 'hook' }), undefined);
  assert.match(await a.text(), /^flexscript_process_resident_memory_bytes \d+/m, 'Node process metrics are there');
  assert.equal(await globalRegistry.getSingleMetricAsString('flexscript_events_total').catch(() => 'absent'), 'absent');
});

test('subscribed, the metrics count what the channels carry; unsubscribed, nothing more', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  const unsubscribe = m.subscribe();
  const traced = async () => {
    await decisions.tracePromise(async () => {}, decided('client-connect', 'hook', 'accept'));
    await pluginCalls.tracePromise(async () => {}, { plugin: 'p', event: 'client-connect', ms: 1, outcome: 'ok' });
    await rootActions.tracePromise(async () => {}, { action: 'set-add', ms: 1 });
  };
  await traced();
  unsubscribe();
  await traced();
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'accept' }), 1);
  assert.equal(sample(text, 'flexscript_plugin_call_seconds_count', { plugin: 'p', event: 'client-connect', outcome: 'ok' }), 1);
  assert.equal(sample(text, 'flexscript_root_actions_total', { action: 'set-add' }), 1);
  assert.equal(decisions.hasSubscribers || pluginCalls.hasSubscribers || rootActions.hasSubscribers, false, 'nothing left subscribed');
});

test('plugins’ own counters are read at each scrape, by plugin and name; names that are no label are skipped', async () => {
  const m = new DaemonMetrics({ processMetrics: false });
  let outages = 2;
  m.bind({
    pluginCounters: () => [
      { plugin: 'ldap-auth', counters: { directory_unreachable: outages } as Record<string, number> },
      { plugin: 'odd', counters: { 'Bad Name"}': 1, fine: Number.NaN } as Record<string, number> },
    ],
  });
  assert.equal(sample(await m.text(), 'flexscript_plugin_events_total', { plugin: 'ldap-auth', name: 'directory_unreachable' }), 2);
  outages = 5;
  const text = await m.text();
  assert.equal(sample(text, 'flexscript_plugin_events_total', { plugin: 'ldap-auth', name: 'directory_unreachable' }), 5);
  assert.doesNotMatch(text, /plugin="odd"/);
});

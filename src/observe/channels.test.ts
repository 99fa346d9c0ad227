import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { test, type TestContext } from 'node:test';
import { hookKey, type ConnectionKey } from '../core/client.ts';
import { Dispatcher } from '../daemon/dispatcher.ts';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../events/event-map.ts';
import type { RawEvent } from '../events/parse-event.ts';
import { createLogger } from '../logger.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { PluginInstance } from '../plugins/plugin-api.ts';
import { RootClient } from '../root/root-client.ts';
import { CHANNELS, decisions, lifecycle, observeAll, pluginCalls, publishLifecycle, rootActions, type ObservedMessage } from './channels.ts';

const log = createLogger('silent');
const plugin = (name: string, instance: PluginInstance, timeoutMs = 1000): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs, instance });
const keyOf = (e: ClientConnectEvent | ClientDisconnectEvent): ConnectionKey => hookKey(e);
const connect = (commonName: string, port: number): RawEvent => ({
  name: 'client-connect',
  instance: 'i',
  source: 'hook',
  env: { common_name: commonName, trusted_ip: '198.51.100.7', trusted_port: String(port), ifconfig_pool_remote_ip: '10.8.0.9' },
});
const PASSWORD = 'correct horse battery staple';
const auth = (username: string, port: number): RawEvent => ({
  name: 'user-pass-verify',
  instance: 'i',
  source: 'management',
  env: { common_name: 'laptop', username, password: PASSWORD, untrusted_ip: '198.51.100.7', untrusted_port: String(port) },
});

function lab() {
  const pipeline = new Pipeline(
    [
      plugin('deny-list', {
        'client-connect': (e, ctx) => (e.commonName === 'mallory' ? ctx.deny('on the deny list') : ctx.push('route 10.20.0.0 255.255.0.0')),
      }),
      plugin('broken', {
        'client-connect': (e) => {
          if (e.commonName === 'crash') throw new Error('kaput');
        },
      }),
      plugin('slow', { 'client-connect': (e) => (e.commonName === 'hang' ? new Promise(() => {}) : undefined) }, 30),
      plugin('verifier', {
        verifiesUsernames: true,
        'user-pass-verify': (e, ctx) => (e.username === 'alice' ? undefined : ctx.deny(`unknown user ${e.username}`)),
      }),
    ],
    log,
  );
  return new Dispatcher(pipeline, log, 4);
}

function watch(t: TestContext): ObservedMessage[] {
  const seen: ObservedMessage[] = [];
  t.after(observeAll((m) => void seen.push(m)));
  return seen;
}

test('decisions and plugin calls are published with who, verdict, reason, deciding plugin, outcome and time', async (t) => {
  const seen = watch(t);
  const d = lab();
  await d.handle({ raw: connect('alice', 1), keyOf });
  await d.handle({ raw: connect('mallory', 2), keyOf });
  await d.handle({ raw: connect('crash', 3), keyOf });
  await d.handle({ raw: connect('hang', 4), keyOf });

  const decided = seen.flatMap((m) => (m.channel === 'decision' ? [m.data] : []));
  assert.deepEqual(
    decided.map((m) => [m.event, m.commonName, m.verdict, m.plugin]),
    [
      ['client-connect', 'alice', 'accept', undefined],
      ['client-connect', 'mallory', 'deny', 'deny-list'],
      ['client-connect', 'crash', 'deny', 'broken'],
      ['client-connect', 'hang', 'deny', 'slow'],
    ],
  );
  assert.equal(decided[0]!.instance, 'i');
  assert.equal(decided[0]!.source, 'hook');
  assert.deepEqual(decided[0]!.config, ['push "route 10.20.0.0 255.255.0.0"']);
  assert.equal(decided[0]!.vpnAddress, '10.8.0.9');
  assert.equal(decided[1]!.reason, 'on the deny list');
  assert.ok(decided.every((m) => typeof m.ms === 'number' && m.ms >= 0));

  const calls = seen.flatMap((m) => (m.channel === 'plugin-call' ? [m.data] : []));
  assert.deepEqual(
    calls.map((c) => `${c.plugin}:${c.outcome}`),
    ['deny-list:ok', 'broken:ok', 'slow:ok', 'deny-list:deny', 'deny-list:ok', 'broken:error', 'deny-list:ok', 'broken:ok', 'slow:timeout'],
  );
  assert.match(calls.find((c) => c.outcome === 'error')!.failure!, /kaput/);
  assert.match(calls.find((c) => c.outcome === 'timeout')!.failure!, /did not finish within 30 ms/);
  assert.ok(calls.every((c) => c.event === 'client-connect' && typeof c.ms === 'number'));
});

test('the start of a traced event carries what it is before the end carries the verdict', async (t) => {
  const starts: string[] = [];
  const ends: string[] = [];
  const subscribers = {
    start: (m: { event: string; verdict?: string }) => void starts.push(`${m.event}:${m.verdict ?? '-'}`),
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (m: { event: string; verdict?: string }) => void ends.push(`${m.event}:${m.verdict ?? '-'}`),
    error: () => {},
  };
  decisions.subscribe(subscribers as never);
  t.after(() => decisions.unsubscribe(subscribers as never));
  await lab().handle({ raw: connect('mallory', 1), keyOf });
  assert.deepEqual(starts, ['client-connect:-']);
  assert.deepEqual(ends, ['client-connect:deny']);
});

test('the password is in no message of any channel, at start or end, also on a deny that names the user', async (t) => {
  const raw: unknown[] = [];
  const names = [CHANNELS.decision, CHANNELS.pluginCall, CHANNELS.rootAction].flatMap((n) =>
    ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((p) => `tracing:${n}:${p}`),
  );
  const keep = (m: unknown) => void raw.push(m);
  for (const n of [...names, CHANNELS.lifecycle]) subscribe(n, keep);
  t.after(() => {
    for (const n of [...names, CHANNELS.lifecycle]) unsubscribe(n, keep);
  });
  const seen = watch(t);
  const d = lab();
  assert.equal((await d.handle({ raw: auth('alice', 1), keyOf })).verdict, 'accept');
  assert.equal((await d.handle({ raw: auth('bob', 2), keyOf })).verdict, 'deny');
  assert.ok(raw.length >= 8, 'the channels carried the events');
  const decided = seen.flatMap((m) => (m.channel === 'decision' ? [m.data] : []));
  assert.deepEqual(
    decided.map((m) => [m.event, m.username, m.verdict]),
    [
      ['user-pass-verify', 'alice', 'accept'],
      ['user-pass-verify', 'bob', 'deny'],
    ],
  );
  for (const m of [...raw, ...seen]) assert.doesNotMatch(JSON.stringify(m), /horse battery/, 'no password');
});

test('nobody subscribed: nothing is traced and no message is made', async () => {
  assert.equal(decisions.hasSubscribers || pluginCalls.hasSubscribers || rootActions.hasSubscribers || lifecycle.hasSubscribers, false);
  let traced = 0;
  const originals = [decisions, pluginCalls, rootActions].map((c) => [c, c.tracePromise] as const);
  for (const [c] of originals) {
    c.tracePromise = ((...args: Parameters<typeof c.tracePromise>) => {
      traced++;
      return (originals.find(([o]) => o === c)![1] as (...a: unknown[]) => unknown).apply(c, args);
    }) as typeof c.tracePromise;
  }
  let made = 0;
  try {
    const d = lab();
    await d.handle({ raw: connect('alice', 1), keyOf });
    await d.handle({ raw: connect('mallory', 2), keyOf });
    await d.handle({ raw: auth('alice', 3), keyOf });
    const root = new RootClient({ command: ['/bin/false'], log, desiredState: () => ({ sets: {}, routes: [] }) });
    await assert.rejects(root.setAdd('staff', '10.8.0.2'));
    publishLifecycle(() => {
      made++;
      return { what: 'stopped' };
    });
  } finally {
    for (const [c, original] of originals) c.tracePromise = original as typeof c.tracePromise;
  }
  assert.equal(traced, 0, 'no tracing while nobody listens');
  assert.equal(made, 0, 'no lifecycle message made while nobody listens');
});

test('root-stage requests are traced by name from the root client, with the error code of a failure', async (t) => {
  const seen = watch(t);
  const root = new RootClient({ command: ['/bin/false'], log, desiredState: () => ({ sets: {}, routes: [] }) });
  await assert.rejects(root.setAdd('staff', '10.8.0.2'));
  const actions = seen.flatMap((m) => (m.channel === 'root-action' ? [m.data] : []));
  assert.equal(actions.length, 1);
  assert.equal(actions[0]!.action, 'set-add');
  assert.equal(actions[0]!.code, 'FXS_ROOT_UNAVAILABLE');
  assert.equal(typeof actions[0]!.ms, 'number');
});

test('lifecycle steps reach subscribers as published', (t) => {
  const seen = watch(t);
  publishLifecycle(() => ({ what: 'reloaded', plugins: ['a', 'b'] }));
  assert.deepEqual(seen, [{ channel: 'lifecycle', data: { what: 'reloaded', plugins: ['a', 'b'] } }]);
});

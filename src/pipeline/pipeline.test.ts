import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../events/event-map.ts';
import { parseEvent } from '../events/parse-event.ts';
import { createLogger } from '../logger.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { PluginInstance } from '../plugins/plugin-api.ts';
import { SessionTable } from '../sessions/session-table.ts';
import { onFinished, pluginCalls, type PluginCallMessage } from '../observe/channels.ts';
import { Pipeline } from './pipeline.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write: (chunk, _e, cb) => {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  return { log: createLogger('info', sink), lines };
}

const plugin = (name: string, instance: PluginInstance, timeoutMs = 200): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs, instance });

const connect = (cn = 'alice') =>
  parseEvent({
    name: 'client-connect',
    instance: 'i',
    source: 'hook',
    env: { common_name: cn, trusted_ip: '192.0.2.1', trusted_port: '1194' },
  }) as ClientConnectEvent;

test('config lines are collected in plugin order', async () => {
  const { log } = capture();
  const p = new Pipeline(
    [
      plugin('a', { 'client-connect': (_e, ctx) => ctx.push('route 10.1.0.0 255.255.0.0') }),
      plugin('b', { 'client-connect': async (_e, ctx) => ctx.config('ifconfig-push 10.8.0.9 255.255.255.0') }),
      plugin('c', { 'client-connect': (_e, ctx) => ctx.push('dhcp-option DOMAIN "corp"') }),
    ],
    log,
  );
  const d = await p.run(connect());
  assert.equal(d.verdict, 'accept');
  assert.deepEqual(d.config, ['push "route 10.1.0.0 255.255.0.0"', 'ifconfig-push 10.8.0.9 255.255.255.0', 'push "dhcp-option DOMAIN \\"corp\\""']);
});

test('any deny wins, later plugins do not run, and the reason is logged with the plugin name', async () => {
  const { log, lines } = capture();
  let laterRan = false;
  const p = new Pipeline(
    [
      plugin('first', { 'client-connect': (_e, ctx) => ctx.push('route 10.1.0.0 255.255.0.0') }),
      plugin('gate', { 'client-connect': (e, ctx) => ctx.deny(`no entry for ${e.commonName}`, 'not today') }),
      plugin('later', { 'client-connect': () => void (laterRan = true) }),
    ],
    log,
  );
  const d = await p.run(connect('mallory'));
  assert.deepEqual(d, { verdict: 'deny', reason: 'no entry for mallory', clientReason: 'not today', decidedBy: 'gate', config: [] });
  assert.equal(laterRan, false);
  assert.ok(lines.some((l) => l.plugin === 'gate' && l.reason === 'no entry for mallory'));
});

test('a plugin that throws or hangs denies that client only; notifications carry on', async (t) => {
  const { log, lines } = capture();
  const calls: PluginCallMessage[] = [];
  t.after(onFinished(pluginCalls, (m) => void calls.push({ ...m })));
  const p = new Pipeline(
    [
      plugin('boom', {
        'client-connect': (e) => {
          if (e.commonName === 'x') throw new Error('kaput');
        },
        'client-disconnect': () => {
          throw new Error('kaput');
        },
      }),
      plugin('slow', { 'client-connect': (e) => (e.commonName === 'y' ? new Promise(() => {}) : undefined) }, 50),
      plugin('after', { 'client-disconnect': (_e, ctx) => ctx.state.set('seen', true) }),
    ],
    log,
  );
  const thrown = await p.run(connect('x'));
  assert.equal(thrown.verdict, 'deny');
  assert.equal(thrown.decidedBy, 'boom');
  assert.match(thrown.reason!, /plugin boom on client-connect: kaput/);
  const hung = await p.run(connect('y'));
  assert.equal(hung.verdict, 'deny');
  assert.match(hung.reason!, /plugin slow on client-connect: did not finish within 50 ms/);
  assert.equal((await p.run(connect('z'))).verdict, 'accept');
  assert.ok(lines.some((l) => l.plugin === 'boom' && l.code === 'FXS_PLUGIN_FAILED'));
  assert.ok(lines.some((l) => l.plugin === 'slow' && l.code === 'FXS_PLUGIN_TIMEOUT'));
  assert.deepEqual(
    calls.slice(0, 3).map((c) => `${c.plugin}:${c.outcome}`),
    ['boom:error', 'boom:ok', 'slow:timeout'],
  );

  const sessions = new SessionTable();
  const s = sessions.create({ via: 'management', instance: 'i', cid: 0 }, { instance: 'i', commonName: 'z' });
  const disconnect = parseEvent({
    name: 'client-disconnect',
    instance: 'i',
    source: 'hook',
    env: { common_name: 'z', bytes_received: '1', bytes_sent: '2', time_duration: '3' },
  }) as ClientDisconnectEvent;
  assert.equal((await p.run(disconnect, s)).verdict, 'accept');
  assert.equal(s.pluginState.get('after')?.get('seen'), true, 'a failing plugin does not stop notifications');
});

test('a config line that could inject a directive denies the client', async () => {
  const { log } = capture();
  const p = new Pipeline([plugin('bad', { 'client-connect': (e, ctx) => ctx.push(`setenv-safe CN ${e.commonName}`) })], log);
  const d = await p.run(connect('a\nroute-gateway 1.2.3.4'));
  assert.equal(d.verdict, 'deny');
  assert.match(d.reason!, /line break/);
  const long = await new Pipeline([plugin('long', { 'client-connect': (_e, ctx) => ctx.config('x'.repeat(300)) })], log).run(connect());
  assert.match(long.reason!, /longer than 255 bytes/);
});

test('calls after a handler finished are ignored, not applied to a later client', async () => {
  const { log, lines } = capture();
  let saved: ((reason: string) => void) | undefined;
  const p = new Pipeline([plugin('late', { 'client-connect': (_e, ctx) => void (saved = ctx.deny) })], log);
  assert.equal((await p.run(connect())).verdict, 'accept');
  saved!('too late');
  assert.ok(lines.some((l) => l.msg === 'deny() after the handler finished is ignored'));
});

test('per-plugin state lives in the session', async () => {
  const { log } = capture();
  const p = new Pipeline(
    [
      plugin('a', { 'client-connect': (_e, ctx) => ctx.state.set('n', 1) }),
      plugin('b', { 'client-connect': (_e, ctx) => assert.equal(ctx.state.get('n'), undefined) }),
    ],
    log,
  );
  const s = new SessionTable().create({ via: 'management', instance: 'i', cid: 0 }, { instance: 'i', commonName: 'alice' });
  assert.equal((await p.run(connect(), s)).verdict, 'accept');
  assert.equal(s.pluginState.get('a')?.get('n'), 1);
});

test('a pending authentication extends the time limit and is passed to the source', async () => {
  const { log } = capture();
  const announced: unknown[] = [];
  const p = new Pipeline(
    [
      plugin(
        'mfa',
        {
          'client-connect': async (e, ctx) => {
            if (e.commonName === 'patient') ctx.pending({ extra: 'CR_TEXT:E:ok?', timeout: 2 });
            await new Promise((r) => setTimeout(r, 150));
          },
        },
        50,
      ),
    ],
    log,
  );
  const waited = await p.run(connect('patient'), undefined, { onPending: (a) => void announced.push(a) });
  assert.equal(waited.verdict, 'accept');
  assert.deepEqual(announced, [{ extra: 'CR_TEXT:E:ok?', timeout: 2 }]);
  const impatient = await p.run(connect('other'));
  assert.equal(impatient.verdict, 'deny');
  assert.match(impatient.reason!, /did not finish within 50 ms/);
});

test('decided: every plugin hears the final answer, also those after the one that denied', async () => {
  const { log } = capture();
  const heard: string[] = [];
  const p = new Pipeline(
    [
      plugin('gate', { 'client-connect': (_e, ctx) => ctx.deny('closed'), decided: (_e, o) => void heard.push(`gate:${o.verdict}`) }),
      plugin('books', { decided: (_e, o) => void heard.push(`books:${o.verdict}:${o.reason}:${o.decidedBy}`) }),
    ],
    log,
  );
  const d = await p.settle(connect(), await p.run(connect()), undefined);
  assert.equal(d.verdict, 'deny');
  assert.deepEqual(heard, ['gate:deny', 'books:deny:closed:gate']);
});

test('decided: a failure on an accept denies the client and the plugins told of the accept hear the deny', async () => {
  const { log } = capture();
  const heard: string[] = [];
  const p = new Pipeline(
    [
      plugin('sets', { decided: (_e, o) => void heard.push(`sets:${o.verdict}`) }),
      plugin('books', {
        decided: (_e, o) => {
          if (o.verdict === 'accept') throw new Error('disk full');
          heard.push('books:deny');
        },
      }),
      plugin('after', { decided: (_e, o) => void heard.push(`after:${o.verdict}`) }),
    ],
    log,
  );
  const d = await p.settle(connect(), await p.run(connect()), undefined);
  assert.equal(d.verdict, 'deny');
  assert.equal(d.decidedBy, 'books');
  assert.match(d.reason ?? '', /disk full/);
  assert.deepEqual(heard, ['sets:accept', 'sets:deny', 'after:deny']);
});

test('decided: a hanging decided is cut off by the time limit and denies', async () => {
  const { log } = capture();
  const p = new Pipeline([plugin('slow', { decided: () => new Promise(() => {}) }, 50)], log);
  const d = await p.settle(connect(), await p.run(connect()), undefined);
  assert.equal(d.verdict, 'deny');
  assert.equal(d.decidedBy, 'slow');
});

test('the addresses an answer gives are read as each line enters: the last ifconfig-push and ifconfig-ipv6-push win, IPv6 canonical, anything else ignored', async () => {
  const { log } = capture();
  const answer = (...lines: string[]) =>
    new Pipeline(
      [
        plugin('a', {
          'client-connect': (_e, ctx) => {
            for (const l of lines) ctx.config(l);
          },
        }),
      ],
      log,
    ).run(connect());
  assert.equal((await answer('push "route 10.1.0.0 255.255.0.0"', 'iroute 10.9.0.0 255.255.0.0')).addresses, undefined);
  assert.deepEqual(
    (await answer('ifconfig-push 10.8.0.10 255.255.255.0', ' ifconfig-push  10.8.0.11 255.255.255.0 ', 'ifconfig-ipv6-push FD00:0:0::0A/64 fd00::1')).addresses,
    { vpnAddress: '10.8.0.11', vpnAddress6: 'fd00::a' },
  );
  assert.equal(
    (await answer('ifconfig-push not-an-address 255.255.255.0', 'ifconfig-ipv6-push 10.8.0.1/64', 'push "ifconfig-push 10.8.0.12 255.255.255.0"')).addresses,
    undefined,
  );
});

test('across plugins the later address wins, and a plugin that denies gives none', async () => {
  const { log } = capture();
  const p = new Pipeline(
    [
      plugin('a', { 'client-connect': (_e, ctx) => ctx.config('ifconfig-push 10.8.0.10 255.255.255.0') }),
      plugin('b', { 'client-connect': (_e, ctx) => ctx.config('ifconfig-ipv6-push fd00::10/64') }),
      plugin('c', { 'client-connect': (_e, ctx) => ctx.config('ifconfig-push 10.8.0.20 255.255.255.0') }),
    ],
    log,
  );
  assert.deepEqual((await p.run(connect())).addresses, { vpnAddress: '10.8.0.20', vpnAddress6: 'fd00::10' });
  const denied = new Pipeline(
    [
      plugin('a', {
        'client-connect': (_e, ctx) => {
          ctx.config('ifconfig-push 10.8.0.10 255.255.255.0');
          ctx.deny('no');
        },
      }),
    ],
    log,
  );
  const d = await denied.run(connect());
  assert.equal(d.verdict, 'deny');
  assert.equal(d.addresses, undefined);
});

test('challenge: the source asks the client and the handler gets the answer, past its old time limit; without a source that can, it rejects', async () => {
  const { log } = capture();
  const answers: string[] = [];
  const p = new Pipeline(
    [
      plugin(
        'otp',
        {
          'user-pass-verify': async (_e, ctx) => {
            try {
              answers.push(await ctx.challenge({ text: 'Code?', timeout: 2 }));
            } catch (err) {
              ctx.deny((err as Error).message);
            }
          },
        },
        50,
      ),
    ],
    log,
  );
  const auth = parseEvent({ name: 'user-pass-verify', instance: 'i', source: 'management', env: { username: 'u', password: 'p' } });
  const asked: unknown[] = [];
  const answered = await p.run(auth, undefined, {
    challenge: async (c) => {
      asked.push(c);
      await new Promise((r) => setTimeout(r, 150));
      return '123456';
    },
  });
  assert.equal(answered.verdict, 'accept');
  assert.deepEqual(asked, [{ text: 'Code?', timeout: 2, echo: true }]);
  assert.deepEqual(answers, ['123456']);
  const hook = await p.run(auth);
  assert.equal(hook.verdict, 'deny');
  assert.match(hook.reason!, /challenge\(\) cannot reach this client/);
});

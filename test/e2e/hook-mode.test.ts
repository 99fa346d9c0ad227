/**
 * Hook mode end to end: a real OpenVPN 2.6 server running as nobody calls the hook client,
 * which hands every event to the real daemon, also running as nobody; real clients connect.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load-config.ts';
import { hookModeLines } from '../../src/sources/hook/openvpn-lines.ts';
import type { EventName } from '../../src/events/event-map.ts';
import { createLab, type Lab } from '../../src/lab/lab.ts';
import type { OpenVpnServer } from '../../src/lab/openvpn-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { HOOK, ownedDir, readJsonLines, startDaemon, writeConfig, type DaemonHandle } from '../../src/lab/daemon-process.ts';
import { RECORDER } from '../support/paths.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';

interface HookLab {
  lab: Lab;
  server: OpenVpnServer;
  daemon: DaemonHandle;
  port: number;
  records: string;
  restartDaemon(): Promise<DaemonHandle>;
}

async function hookLab(
  t: TestContext,
  opts: { events?: EventName[]; extraServer?: string[]; recorder?: string[]; hookPath?: (dir: string) => string } = {},
): Promise<HookLab> {
  const lab = await createLab('hook-mode');
  t.after(() => lab.close());
  const work = ownedDir(join(lab.dir, 'work'));
  const records = join(work, 'records.jsonl');
  const yaml = [
    'instance: e2e',
    'hook:',
    `  dir: ${join(work, 'run')}`,
    '  group: nogroup',
    '  timeout: 5s',
    'pipeline:',
    '  timeout: 1s',
    'plugins:',
    `  - path: ${RECORDER}`,
    '    options:',
    `      file: ${records}`,
    ...(opts.recorder ?? []).map((l) => `      ${l}`),
  ].join('\n');
  const configPath = writeConfig(lab.dir, yaml);
  let daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'));
  lab.track(() => daemon.stop());
  const hook = parseConfig(yaml, configPath).config.hook!;
  const port = await lab.allocPort();
  const server = await lab.startServer({
    port,
    extraConfig: [
      ...hookModeLines(hook, opts.events ?? ['client-connect', 'client-disconnect', 'learn-address'], opts.hookPath?.(lab.dir) ?? HOOK),
      ...(opts.extraServer ?? []),
    ],
  });
  await server.waitForLog(/Initialization Sequence Completed/);
  return {
    lab,
    server,
    get daemon() {
      return daemon;
    },
    port,
    records,
    restartDaemon: async () => {
      await daemon.stop();
      daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'));
      return daemon;
    },
  };
}

const recordsOf = (file: string, event: string) => readJsonLines(file).filter((r) => r.event === event);

test("a plugin's pushed route arrives in the client's PUSH_REPLY", async (t) => {
  const h = await hookLab(t);
  const client = await h.lab.startClient({ commonName: 'alice', port: h.port });
  await client.waitConnected();
  assert.match(client.pushReply() ?? '', new RegExp(routeFor('alice').replace(/\./g, '\\.')));
});

test("a plugin's deny fails the client's authentication and the reason is logged", async (t) => {
  const h = await hookLab(t);
  const client = await h.lab.startClient({ commonName: 'deny-eve', port: h.port });
  await client.waitAuthFailed();
  const line = await h.daemon.waitForLog('deny log line', (l) => l.msg === 'client-connect denied' && l.commonName === 'deny-eve');
  assert.equal(line.reason, 'recorder refuses deny-eve');
  assert.equal(line.plugin, 'recorder');
  // OpenVPN runs client-disconnect for a denied deferred client too; plugins must not see it
  await h.daemon.waitForLog('denied client left', (l) => l.msg === 'denied client left' && l.commonName === 'deny-eve');
  assert.deepEqual(recordsOf(h.records, 'client-disconnect'), []);
});

test('learn-address and client-disconnect reach plugins with address, common name, bytes and duration', async (t) => {
  const h = await hookLab(t);
  const client = await h.lab.startClient({ commonName: 'carol', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
  await client.waitConnected();
  const connect = await waitFor('connect record', () => recordsOf(h.records, 'client-connect').find((r) => r.commonName === 'carol'));
  const learn = await waitFor('learn-address add', () => recordsOf(h.records, 'learn-address').find((r) => r.operation === 'add'));
  assert.equal(learn.commonName, 'carol');
  assert.equal(learn.address, connect.vpnAddress);
  assert.equal(learn.sessionKnown, true, 'learn-address found the session by its address');
  await client.stop();
  const gone = await waitFor('disconnect record', () => recordsOf(h.records, 'client-disconnect').find((r) => r.commonName === 'carol'));
  assert.ok((gone.bytesReceived as number) > 0 && (gone.bytesSent as number) > 0, JSON.stringify(gone));
  assert.equal(typeof gone.duration, 'number');
  assert.equal(gone.stateKept, true, 'state set at connect is there at disconnect');
});

test('a plugin that throws denies that client while other clients connect', async (t) => {
  const h = await hookLab(t);
  const [bad, ...good] = await Promise.all([
    h.lab.startClient({ commonName: 'throw-x', port: h.port }),
    h.lab.startClient({ commonName: 'dave', port: h.port }),
    h.lab.startClient({ commonName: 'erin', port: h.port }),
  ]);
  await bad!.waitAuthFailed();
  await Promise.all(good.map((c) => c.waitConnected()));
  const line = await h.daemon.waitForLog('failure log', (l) => l.code === 'FXS_PLUGIN_FAILED' && l.plugin === 'recorder');
  assert.match(String(line.err), /exploded on purpose/);
  const late = await h.lab.startClient({ commonName: 'frank', port: h.port });
  await late.waitConnected();
});

test('with the daemon stopped a connecting client is denied and OpenVPN keeps serving', async (t) => {
  const h = await hookLab(t);
  const first = await h.lab.startClient({ commonName: 'gina', port: h.port });
  await first.waitConnected();
  await h.daemon.stop();
  const denied = await h.lab.startClient({ commonName: 'hank', port: h.port });
  await denied.waitAuthFailed();
  await h.restartDaemon();
  const after = await h.lab.startClient({ commonName: 'ivy', port: h.port });
  await after.waitConnected();
  assert.match(after.pushReply() ?? '', /route 10\.200\./);
});

const HOSTILE = [
  'a;touch /tmp/fxs-pwned-1',
  '$(touch /tmp/fxs-pwned-2)',
  '`touch /tmp/fxs-pwned-3`',
  `it's "quoted" both ways`,
  'spaces  and  gaps ',
  'Zoë 雪 Ünïcødé',
  'back\\slash',
  'x'.repeat(64),
];

test('hostile common names connect, reach plugins as exactly those strings, and nothing runs', async (t) => {
  const h = await hookLab(t);
  const clients = await Promise.all(HOSTILE.map((cn) => h.lab.startClient({ commonName: cn, port: h.port })));
  await Promise.all(clients.map((c) => c.waitConnected()));
  const seen = recordsOf(h.records, 'client-connect').map((r) => r.commonName);
  assert.deepEqual([...seen].sort(), [...HOSTILE].sort());
  for (const r of recordsOf(h.records, 'client-connect')) assert.equal(r.envCommonName, r.commonName);
  for (const c of clients) assert.match(c.pushReply() ?? '', new RegExp(routeFor(c.commonName).replace(/\./g, '\\.')));
  for (const n of [1, 2, 3]) assert.equal(existsSync(`/tmp/fxs-pwned-${n}`), false);
});

test('50 clients connecting at once all get their own answer', async (t) => {
  const h = await hookLab(t);
  const clients = await Promise.all(
    Array.from({ length: 50 }, (_, n) => h.lab.startClient({ commonName: n % 10 === 3 ? `deny-${n}` : `storm-${n}`, port: h.port })),
  );
  await Promise.all(
    clients.map(async (c) => {
      if (c.commonName.startsWith('deny-')) return c.waitAuthFailed(120_000);
      await c.waitConnected(120_000);
      assert.match(c.pushReply() ?? '', new RegExp(`${routeFor(c.commonName).replace(/\./g, '\\.')}(,|$)`), c.commonName);
    }),
  );
  assert.equal(recordsOf(h.records, 'client-connect').length, 50);
});

test('answers that arrive before the hook has exited are still right, denials included', async (t) => {
  // A hook that lingers after handing over: the daemon's answer is then always in the deferred
  // file before OpenVPN looks at it, which OpenVPN treats as an immediate (non-deferred) result.
  const h = await hookLab(t, {
    hookPath: (dir) => {
      const path = join(dir, 'slow-hook');
      writeFileSync(path, `#!/bin/sh\n${HOOK} "$@"\nrc=$?\nsleep 1\nexit $rc\n`, { mode: 0o755 });
      return path;
    },
  });
  const [good, bad] = await Promise.all([h.lab.startClient({ commonName: 'quick', port: h.port }), h.lab.startClient({ commonName: 'deny-quick', port: h.port })]);
  await good.waitConnected();
  assert.match(good.pushReply() ?? '', new RegExp(routeFor('quick').replace(/\./g, '\\.')));
  await bad.waitAuthFailed();
  await h.server.waitForLog(/deny-quick.*rejected due to 'disable' directive/);
});

test('tls-verify waits for the daemon and its deny refuses the client', async (t) => {
  const h = await hookLab(t, { events: ['tls-verify', 'client-connect', 'client-disconnect'] });
  const refused = await h.lab.startClient({ commonName: 'tlsdeny-zed', port: h.port });
  const fine = await h.lab.startClient({ commonName: 'yolanda', port: h.port });
  await fine.waitConnected();
  await waitFor('tls-verify deny logged', () => h.daemon.logs().find((l) => l.msg === 'tls-verify denied' && l.commonName === 'tlsdeny-zed'));
  await h.server.waitForLog(/VERIFY SCRIPT ERROR: depth=0, CN=tlsdeny-zed/);
  assert.ok(!refused.log().includes('Initialization Sequence Completed'));
  const depths = recordsOf(h.records, 'tls-verify').filter((r) => r.commonName === 'yolanda').map((r) => r.depth);
  assert.deepEqual(depths, [0], 'the client certificate is checked at depth 0 (the CA at depth 1 has its own CN)');
});

test('user-pass-verify is deferred: right password connects, wrong one is refused', async (t) => {
  const h = await hookLab(t, { events: ['user-pass-verify', 'client-connect', 'client-disconnect'], recorder: ['password: s3cret pass'] });
  const good = await h.lab.startClient({ commonName: 'kim', port: h.port, username: 'kim', password: 's3cret pass' });
  const bad = await h.lab.startClient({ commonName: 'lou', port: h.port, username: 'lou', password: 'guess' });
  await good.waitConnected();
  await bad.waitAuthFailed();
  const log = await h.daemon.waitForLog('auth deny', (l) => l.msg === 'user-pass-verify denied');
  assert.equal(log.reason, 'wrong password for lou');
  assert.ok(!JSON.stringify(h.daemon.logs()).includes('s3cret'), 'passwords are never logged');
});

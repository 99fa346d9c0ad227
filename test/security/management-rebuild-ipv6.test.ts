/**
 * Sessions rebuilt from `status 3` keep the client's virtual IPv6 address: when such a
 * session's disconnect is missed (OpenVPN restarted while the daemon was detached), the
 * disconnect the daemon infers carries the IPv6 address too, so plugins (the firewall's set
 * elements) let go of it at once instead of at the next reconcile.
 */
import assert from 'node:assert/strict';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Dispatcher } from '../../src/daemon/dispatcher.ts';
import type { ClientDisconnectEvent } from '../../src/events/event-map.ts';
import { lifecycleOf, readJsonLines, REPO } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { createLogger } from '../../src/logger.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { ManagementSource } from '../../src/sources/management/management-source.ts';
import { modeLab } from '../e2e/mode-lab.ts';

/** Recorded from OpenVPN 2.6.14 with `server-ipv6`: one client, v6-vera, with fd00:77:1::1000. */
const RECORDED = new URL('../../src/openvpn-management/fixtures/status3-ipv6.txt', import.meta.url);

test('a session rebuilt from a recorded status 3 keeps its IPv6 address, and its missed disconnect carries it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-rebuild6-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const withClient = await readFile(RECORDED, 'utf8');
  // the same reply once the client has gone: headers only
  const withoutClient = withClient
    .split('\r\n')
    .filter((l) => !/^(CLIENT_LIST|ROUTING_TABLE)\t/.test(l))
    .join('\r\n');
  let attaches = 0;
  const sockets = new Set<Socket>();
  const fake = createServer((socket) => {
    sockets.add(socket);
    const reply = ++attaches === 1 ? withClient : withoutClient;
    socket.write(">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n");
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === 'status 3') socket.write(reply);
        else socket.write('SUCCESS: ok\r\n');
      }
    });
    socket.on('close', () => sockets.delete(socket));
  });
  const path = join(dir, 'mgmt.sock');
  await new Promise<void>((resolve) => fake.listen(path, resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => fake.close(() => resolve()));
  });

  const log = createLogger('silent');
  const disconnects: ClientDisconnectEvent[] = [];
  const pipeline = new Pipeline(
    [{ name: 'watch', path: '/watch.ts', timeoutMs: 1000, instance: { 'client-disconnect': (e) => void disconnects.push(e) } }],
    log,
  );
  const dispatcher = new Dispatcher(pipeline, log, 4);
  let rebuilds = 0;
  const source = await ManagementSource.start({
    config: { name: 'v6', socket: path },
    sink: dispatcher,
    log,
    commandTimeoutMs: 5000,
    onRebuilt: () => void rebuilds++,
  });
  t.after(() => source.close());

  await waitFor('the first rebuild', () => rebuilds >= 1);
  const [session] = dispatcher.sessions.list();
  assert.equal(session?.commonName, 'v6-vera');
  assert.equal(session?.vpnAddress, '10.77.191.2');
  assert.equal(session?.vpnAddress6, 'fd00:77:1::1000');

  // OpenVPN restarts: the connection drops, and on reattach the client is gone
  for (const s of sockets) s.destroy();
  const missed = await waitFor('the missed disconnect', () => disconnects.find((e) => e.commonName === 'v6-vera'));
  assert.equal(missed.missed, true);
  assert.equal(missed.vpnAddress, '10.77.191.2');
  assert.equal(missed.vpnAddress6, 'fd00:77:1::1000');
  assert.deepEqual(dispatcher.sessions.list(), []);
});

test('through real OpenVPN with server-ipv6: the daemon restarted, then OpenVPN; the rebuilt session’s missed disconnect carries the IPv6 address', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-rebuild6-e2e-'));
  await chown(dir, 65534, 65534);
  t.after(() => rm(dir, { recursive: true, force: true }));
  const records = join(dir, 'addresses.jsonl');
  const h = await modeLab(t, 'management', {
    extraServer: ['server-ipv6 fd00:78:1::/64'],
    plugins: [`  - path: ${join(REPO, 'test/fixtures/plugins/address-recorder.ts')}`, '    options:', `      file: ${records}`],
  });
  const vera = await h.lab.startClient({ commonName: 'v6-vera', port: h.port });
  await vera.waitConnected();
  // management mode learns the addresses after the connect; OpenVPN's log names both
  const [, v4, v6] = await h.server.waitForLog(/v6-vera\/\S+ MULTI_sva: pool returned IPv4=([\d.]+), IPv6=(fd00:78:1:[0-9a-f:]+)/);

  // the daemon forgets everything and rebuilds from status 3
  await h.restartDaemon();
  await h.daemon.waitForEvent(
    'rebuild',
    lifecycleOf('sessions-rebuilt', (m) => m.source === 'management' && m.rebuilt === 1),
  );
  // OpenVPN crashes and comes back: the rebuilt session's disconnect is missed
  await vera.stop();
  await h.restartServer('SIGKILL');
  await h.daemon.waitForEvent(
    'missed',
    lifecycleOf('sessions-rebuilt', (m) => m.source === 'management' && m.closedAsMissed === 1),
  );
  const missed = await waitFor('missed disconnect recorded', () => readJsonLines(records).find((r) => r.event === 'client-disconnect'));
  assert.equal(missed.missed, true);
  assert.equal(missed.vpnAddress, v4);
  assert.equal(missed.vpnAddress6, v6);
});

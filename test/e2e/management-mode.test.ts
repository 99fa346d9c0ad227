/**
 * What only management mode has: management-hold, the pass-through socket and what it allows,
 * several OpenVPN instances on one daemon, and fast-push. The shared scenarios (rebuilding
 * sessions, OpenVPN crashing, `flexscript kill`, pending authentication, plugin time limits)
 * are in conformance.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decisionOf, FLEXSCRIPT, lifecycleOf, ownedDir, startDaemon, writeConfig, type DaemonHandle } from '../../src/lab/daemon-process.ts';
import { createLab } from '../../src/lab/lab.ts';
import { RECORDER } from '../support/paths.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { attachedTo, modeLab } from './mode-lab.ts';
import { ask } from '../../src/cli/control.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

/** Each attach to OpenVPN that a sessions rebuild has followed, paired with the first such rebuild. */
function rebuildsAfterAttaches(daemon: DaemonHandle) {
  const events = daemon.events();
  const isAttach = lifecycleOf('source-attached');
  const isRebuild = lifecycleOf('sessions-rebuilt');
  return events.flatMap((attach, i) => {
    if (!isAttach(attach)) return [];
    const rebuild = events.slice(i + 1).find((e) => isAttach(e) || isRebuild(e));
    return rebuild && isRebuild(rebuild) ? [{ attach, rebuild }] : [];
  });
}

test('with management-hold the daemon releases OpenVPN and reads its live clients at once, also after OpenVPN restarts', async (t) => {
  const h = await modeLab(t, 'management', { extraServer: ['management-hold'] });
  const first = await h.daemon.waitForEvent('rebuild after release', lifecycleOf('sessions-rebuilt'));
  assert.equal(first.data.rebuilt, 0);
  const client = await h.lab.startClient({ commonName: 'held', port: h.port });
  await client.waitConnected();
  await h.restartServer('SIGKILL');
  await client.waitConnected();
  await waitFor('a rebuild after the second attach', () => rebuildsAfterAttaches(h.daemon).length >= 2);
  // not the second look some seconds later: status is read as soon as OpenVPN is released (a
  // status read that failed would leave only that second look, 8 s after the attach)
  for (const [i, { attach, rebuild }] of rebuildsAfterAttaches(h.daemon).entries()) {
    const ms = Date.parse(rebuild.time) - Date.parse(attach.time);
    assert.ok(ms >= 0 && ms < 5000, `rebuild ${i} came ${ms} ms after the attach`);
  }
});

test('the pass-through socket refuses commands that are not read-only and serves flexscript status from OpenVPN', async (t) => {
  // no control socket: flexscript status must read OpenVPN's own list
  const h = await modeLab(t, 'management', { passThrough: true, watch: false });
  assert.doesNotMatch(readFileSync(h.configPath, 'utf8'), /^control:/m, 'the daemon has no control socket');
  const socket = h.passThroughSocket;
  assert.match((await ask(socket, 'version'))[0] ?? '', /^OpenVPN Version: OpenVPN 2\.6/);
  assert.deepEqual(await ask(socket, 'signal SIGTERM'), ['ERROR: command not allowed here: "signal SIGTERM"']);
  assert.deepEqual(await ask(socket, '@nope status 3'), ['ERROR: no OpenVPN instance named "nope"']);
  assert.ok(h.server.running, 'OpenVPN is still running');
  // without a control socket, flexscript status reads OpenVPN's own list through this socket
  const client = await h.lab.startClient({ commonName: 'peggy', port: h.port });
  await client.waitConnected();
  const status = flexscript('status', '--config', h.configPath, '--json');
  assert.equal(status.status, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { commonName: string; instance: string; vpnAddress: string; bytesReceived?: number }[];
  assert.deepEqual(
    rows.map((r) => [r.commonName, r.instance]),
    [['peggy', 'e2e']],
  );
  assert.match(rows[0]!.vpnAddress, /^10\./);
  const table = flexscript('status', '--config', h.configPath);
  assert.match(table.stdout, /^INSTANCE +NAME +USER +VPN ADDRESS +REAL ADDRESS +SINCE \([^)]+\) +BYTES IN +BYTES OUT\ne2e +peggy /);
});

test('one daemon serves two OpenVPN instances: a unix socket and a password-protected loopback TCP port', async (t) => {
  const lab = await createLab('two-instances');
  t.after(() => lab.close());
  const work = ownedDir(join(lab.dir, 'work'));
  const records = join(work, 'records.jsonl');
  const socket = join(lab.dir, 'udp.sock');
  const mgmtPort = await lab.allocPort();
  const password = join(lab.dir, 'tcp.pw');
  writeFileSync(password, 'correct horse\n', { mode: 0o644 });
  const [udpPort, tcpPort] = [await lab.allocPort(), await lab.allocPort()];
  const udp = await lab.startServer({ port: udpPort, extraConfig: [`management ${socket} unix`, 'management-client-auth', 'auth-user-pass-optional'] });
  const tcp = await lab.startServer({
    port: tcpPort,
    proto: 'tcp',
    extraConfig: [`management 127.0.0.1 ${mgmtPort} ${password}`, 'management-client-auth', 'auth-user-pass-optional'],
  });
  await Promise.all([udp.waitForLog(/Initialization Sequence Completed/), tcp.waitForLog(/Initialization Sequence Completed/)]);
  const config = writeConfig(
    lab.dir,
    [
      'management:',
      '  instances:',
      `    - { name: vpn-udp, socket: ${socket} }`,
      `    - { name: vpn-tcp, host: 127.0.0.1, port: ${mgmtPort}, password-file: ${password} }`,
      'plugins:',
      `  - { path: ${RECORDER}, options: { file: ${records} } }`,
    ].join('\n'),
  );
  const daemon = await startDaemon(config, join(lab.dir, 'daemon.log'));
  lab.track(() => daemon.stop());
  await daemon.waitForEvent('vpn-udp attached', attachedTo('vpn-udp'));
  await daemon.waitForEvent('vpn-tcp attached', attachedTo('vpn-tcp'));
  const a = await lab.startClient({ commonName: 'over-udp', port: udpPort });
  const b = await lab.startClient({ commonName: 'over-tcp', port: tcpPort, proto: 'tcp' });
  await Promise.all([a.waitConnected(), b.waitConnected()]);
  const overUdp = await daemon.waitForEvent('over-udp accepted', decisionOf({ event: 'client-connect', commonName: 'over-udp', verdict: 'accept' }));
  const overTcp = await daemon.waitForEvent('over-tcp accepted', decisionOf({ event: 'client-connect', commonName: 'over-tcp', verdict: 'accept' }));
  assert.equal(overUdp.data.instance, 'vpn-udp');
  assert.equal(overTcp.data.instance, 'vpn-tcp');
  assert.match(b.pushReply() ?? '', new RegExp(routeFor('over-tcp').replace(/\./g, '\\.')));
});

test('fast-push auto (the default): a lone connect is answered plainly; a connect while another is being answered is nudged', async (t) => {
  const h = await modeLab(t, 'management');
  const quiet = await h.lab.startClient({ commonName: 'quiet', port: h.port });
  await quiet.waitConnected();
  assert.doesNotMatch(quiet.log(), /AUTH_PENDING/);
  assert.match(quiet.pushReply() ?? '', new RegExp(routeFor('quiet').replace(/\./g, '\\.')));
  // slow-* keeps its connect in flight for 2.5 s; a connect meanwhile comes in a burst
  const slow = await h.lab.startClient({ commonName: 'slow-a', port: h.port });
  // OpenVPN got slow-a's pending notice: its connect is in flight
  await h.server.waitForLog(/MANAGEMENT: CMD 'client-pending-auth \d+ \d+ "CR_TEXT:E:Approve the login on your phone" 30'/);
  const busy = await h.lab.startClient({ commonName: 'busy', port: h.port });
  await busy.waitConnected();
  assert.match(busy.log(), /AUTH_PENDING/);
  assert.match(busy.pushReply() ?? '', new RegExp(routeFor('busy').replace(/\./g, '\\.')));
  await slow.waitConnected();
});

test('fast-push: each client-auth is followed by a nudge, so the client gets its push without waiting for a timer', async (t) => {
  const h = await modeLab(t, 'management', { extraConfig: ['  fast-push: true'] });
  const client = await h.lab.startClient({ commonName: 'quick', port: h.port });
  await client.waitConnected();
  // OpenVPN took the nudge: it reaches the client as an AUTH_PENDING notice, then the PUSH_REPLY with its route
  assert.match(client.log(), /AUTH_PENDING received/);
  assert.match(client.pushReply() ?? '', new RegExp(routeFor('quick').replace(/\./g, '\\.')));
});

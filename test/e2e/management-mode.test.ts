/**
 * What only management mode has: reattaching when OpenVPN restarts, rebuilding sessions when
 * the daemon restarts, the pass-through socket with `flexscript status` and `flexscript kill`,
 * and answers that never hold OpenVPN up.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLEXSCRIPT, ownedDir, startDaemon, writeConfig } from '../../src/lab/daemon-process.ts';
import { createLab } from '../../src/lab/lab.ts';
import { RECORDER } from '../support/paths.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { modeLab } from './mode-lab.ts';
import { ask } from '../../src/cli/control.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

test('OpenVPN restarted while the daemon runs: the daemon reattaches, closes the lost sessions and serves new clients', async (t) => {
  const h = await modeLab(t, 'management');
  const before = await h.lab.startClient({ commonName: 'before', port: h.port });
  await before.waitConnected();
  // a crash: OpenVPN reports no DISCONNECT, so the daemon must notice on its own
  await h.restartServer('SIGKILL');
  await h.daemon.waitForLog('reattach', (l) => l.msg === 'sessions rebuilt from status' && l.closedAsMissed === 1);
  const missed = await waitFor('missed disconnect', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'before'));
  assert.equal(missed.missed, true);
  const after = await h.lab.startClient({ commonName: 'after', port: h.port });
  await after.waitConnected();
  assert.match(after.pushReply() ?? '', new RegExp(routeFor('after').replace(/\./g, '\\.')));
});

test('with management-hold the daemon releases OpenVPN and reads its live clients at once, also after OpenVPN restarts', async (t) => {
  const h = await modeLab(t, 'management', { extraServer: ['management-hold'] });
  const first = await h.daemon.waitForLog('rebuild after release', (l) => l.msg === 'sessions rebuilt from status');
  const client = await h.lab.startClient({ commonName: 'held', port: h.port });
  await client.waitConnected();
  await h.restartServer('SIGKILL');
  await client.waitConnected();
  const rebuilds = () => h.daemon.logs().filter((l) => l.msg === 'sessions rebuilt from status');
  await waitFor('a rebuild after the restart', () => rebuilds().length >= 2);
  // not the second look some seconds later: status is read as soon as OpenVPN is released
  const attaches = h.daemon.logs().filter((l) => l.msg === 'attached to OpenVPN management interface');
  for (const [i, attach] of attaches.entries()) {
    const ms = Date.parse(String(rebuilds()[i]?.time)) - Date.parse(String(attach.time));
    assert.ok(ms < 5000, `rebuild ${i} came ${ms} ms after the attach`);
  }
  assert.equal(first.live, 0);
  assert.deepEqual(
    h.daemon.logs().filter((l) => l.msg === 'could not read status to rebuild sessions'),
    [],
  );
});

test('the daemon restarted while clients are connected rebuilds its sessions from status', async (t) => {
  const h = await modeLab(t, 'management', { passThrough: true });
  const clients = await Promise.all(
    ['rita', 'sam'].map((commonName) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] })),
  );
  await Promise.all(clients.map((c) => c.waitConnected()));
  await h.restartDaemon();
  const rebuilt = await h.daemon.waitForLog('rebuild', (l) => l.msg === 'sessions rebuilt from status');
  assert.equal(rebuilt.rebuilt, 2);
  const status = flexscript('status', '--config', h.configPath, '--json');
  assert.equal(status.status, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { commonName: string; instance: string; vpnAddress: string }[];
  assert.deepEqual(rows.map((r) => r.commonName).sort(), ['rita', 'sam']);
  assert.ok(rows.every((r) => r.instance === 'e2e' && /^10\./.test(r.vpnAddress)));
  const table = flexscript('status', '--config', h.configPath);
  assert.match(table.stdout, /^INSTANCE +NAME +USER +VPN ADDRESS +REAL ADDRESS +SINCE +BYTES IN +BYTES OUT\ne2e +(rita|sam) /);
  // a disconnect after the restart reaches plugins for the rebuilt session
  await clients[0]!.stop();
  const gone = await waitFor('disconnect after restart', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'rita'));
  assert.equal(gone.missed, false);
  assert.ok((gone.bytesSent as number) > 0);
});

test('flexscript kill NAME disconnects that client and only that one', async (t) => {
  const h = await modeLab(t, 'management', { passThrough: true });
  const [victim, bystander] = await Promise.all(['mallory', 'trent'].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
  await Promise.all([victim!.waitConnected(), bystander!.waitConnected()]);
  const kill = flexscript('kill', 'mallory', '--config', h.configPath);
  assert.equal(kill.status, 0, kill.stderr);
  assert.match(kill.stdout, /disconnected 1 session\(s\) of "mallory"/);
  await victim!.waitForLog(/SIGTERM|client-kill|Connection reset|restart/i);
  await waitFor('mallory leaves', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'mallory'));
  assert.ok(!h.recordsOf('client-disconnect').some((r) => r.commonName === 'trent'));
  const unknown = flexscript('kill', 'nobody-here', '--config', h.configPath);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no live client named "nobody-here"/);
});

test('a plugin that never answers leads to a deny within its time limit, while others connect', async (t) => {
  const h = await modeLab(t, 'management', { pluginTimeout: '2s' });
  const hung = await h.lab.startClient({ commonName: 'hang-forever', port: h.port });
  const fine = await h.lab.startClient({ commonName: 'quinn', port: h.port });
  await fine.waitConnected();
  await hung.waitAuthFailed();
  const line = await h.daemon.waitForLog('timeout', (l) => l.code === 'FXS_PLUGIN_TIMEOUT');
  assert.equal(line.plugin, 'recorder');
  await h.server.waitForLog(/connection rejected: plugin recorder on client-connect: did not finish within 2000 ms/);
});

test('a plugin that needs time announces a pending authentication and then decides', async (t) => {
  const h = await modeLab(t, 'management', { pluginTimeout: '1s' });
  const client = await h.lab.startClient({ commonName: 'slow-sue', port: h.port });
  await client.waitConnected();
  await h.server.waitForLog(/MANAGEMENT: CMD 'client-pending-auth \d+ \d+ "CR_TEXT:E:Approve the login on your phone" 30'/);
  const decided = await h.daemon.waitForLog('accept', (l) => l.msg === 'client-connect' && l.commonName === 'slow-sue');
  assert.ok((decided.ms as number) > 2000, `decided after ${decided.ms} ms, past the 1 s limit it extended`);
  assert.ok(!h.daemon.logs().some((l) => l.msg === 'OpenVPN did not take the pending notice'), 'OpenVPN accepted client-pending-auth');
  assert.match(client.pushReply() ?? '', new RegExp(routeFor('slow-sue').replace(/\./g, '\\.')));
});

test('the pass-through socket refuses commands that are not read-only', async (t) => {
  const h = await modeLab(t, 'management', { passThrough: true });
  const socket = h.configPath.replace(/flexscript\.yaml$/, 'work/control.sock');
  assert.match((await ask(socket, 'version'))[0] ?? '', /^OpenVPN Version: OpenVPN 2\.6/);
  assert.deepEqual(await ask(socket, 'signal SIGTERM'), ['ERROR: command not allowed here: "signal SIGTERM"']);
  assert.deepEqual(await ask(socket, '@nope status 3'), ['ERROR: no OpenVPN instance named "nope"']);
  assert.ok(h.server.running, 'OpenVPN is still running');
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
  await waitFor('both attached', () => daemon.logs().filter((l) => l.msg === 'attached to OpenVPN management interface').length === 2);
  const a = await lab.startClient({ commonName: 'over-udp', port: udpPort });
  const b = await lab.startClient({ commonName: 'over-tcp', port: tcpPort, proto: 'tcp' });
  await Promise.all([a.waitConnected(), b.waitConnected()]);
  const byName = new Map(
    daemon
      .logs()
      .filter((l) => l.msg === 'client-connect')
      .map((l) => [l.commonName, l.instance]),
  );
  assert.equal(byName.get('over-udp'), 'vpn-udp');
  assert.equal(byName.get('over-tcp'), 'vpn-tcp');
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
  await h.daemon.waitForLog('slow-a pending', (l) => l.msg === 'authentication pending');
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
  // the nudge reaches the client as an AUTH_PENDING notice, then the PUSH_REPLY with its route
  assert.match(client.log(), /AUTH_PENDING/);
  assert.match(client.pushReply() ?? '', new RegExp(routeFor('quick').replace(/\./g, '\\.')));
  assert.ok(!h.daemon.logs().some((l) => l.msg === 'fast-push nudge not taken'));
});

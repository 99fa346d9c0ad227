/**
 * `flexscript status` through the daemon's own control socket: in hook mode (which has no
 * management interface to ask) and in management mode (where OpenVPN's `status 3` adds bytes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { askControl } from '../../src/cli/control.ts';
import type { ControlSession } from '../../src/daemon/control-socket.ts';
import { FLEXSCRIPT, ownedDir } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { modeLab, type Mode } from './mode-lab.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

const HOSTILE = `it's "$(touch /tmp/fxs-status-pwned)" ;x`;

async function labWithControl(t: TestContext, mode: Mode) {
  const dir = ownedDir(mkdtempSync(join(tmpdir(), 'fxs-control-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'control.sock');
  const h = await modeLab(t, mode, { extraConfig: ['control:', `  socket: ${socket}`, '  group: nogroup', '  mode: "0660"'] });
  return { h, socket };
}

const json = (configPath: string): ControlSession[] => {
  const out = flexscript('status', '--config', configPath, '--json');
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as ControlSession[];
};

test('hook mode: flexscript status lists the live clients from the control socket, and forgets those that left', async (t) => {
  const { h, socket } = await labWithControl(t, 'hook');
  const st = statSync(socket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.uid, 65534, 'owned by the daemon (nobody)');
  assert.equal(st.gid, 65534, 'group nogroup');
  assert.deepEqual(json(h.configPath), []);

  const [alice, hostile] = await Promise.all(
    ['alice', HOSTILE].map((commonName) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] })),
  );
  await Promise.all([alice!.waitConnected(), hostile!.waitConnected()]);
  const pushed = /ifconfig (\S+) /.exec(alice!.pushReply() ?? '')?.[1];
  const rows = await waitFor('both clients in status', () => {
    const r = json(h.configPath);
    return r.length === 2 && r;
  });
  const a = rows.find((r) => r.commonName === 'alice');
  assert.ok(a, JSON.stringify(rows));
  assert.equal(a.instance, 'e2e');
  assert.equal(a.vpnAddress, pushed);
  assert.equal(a.realAddress, '127.0.0.1');
  assert.ok(typeof a.realPort === 'number' && a.realPort > 0);
  assert.ok(Math.abs(Date.parse(a.since) - Date.now()) < 120_000, a.since);
  assert.ok(
    rows.some((r) => r.commonName === HOSTILE),
    'a hostile name comes back as exactly that string',
  );
  assert.throws(() => statSync('/tmp/fxs-status-pwned'), 'and nothing ran');

  const table = flexscript('status', '--config', h.configPath);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^INSTANCE +NAME +USER +VPN ADDRESS +REAL ADDRESS +SINCE \([^)]+\) +BYTES IN +BYTES OUT\n/);
  assert.match(table.stdout, new RegExp(`\\ne2e +alice +- +${pushed!.replace(/\./g, '\\.')} +127\\.0\\.0\\.1:\\d+ `));
  assert.ok(table.stdout.includes(`it's \\"$(touch`), 'quotes are escaped in the table');

  await alice!.stop();
  await waitFor('alice gone from status', () => {
    const r = json(h.configPath);
    return r.length === 1 && r[0]!.commonName === HOSTILE;
  });

  // the socket is the daemon's and its group's only: another user cannot ask
  const outsider = spawnSync(
    'setpriv',
    ['--reuid', '12345', '--regid', '12345', '--clear-groups', '--', process.execPath, FLEXSCRIPT, 'status', '--config', h.configPath],
    { encoding: 'utf8' },
  );
  assert.equal(outsider.status, 4, 'exit 4: the daemon is not reachable');
  assert.match(outsider.stderr, /cannot reach the daemon at .*control\.sock: .*EACCES/);

  // only reading is offered: kill needs control.allow-kill
  const refused = await askControl(socket, { command: 'kill', id: 'x', reason: 'x' });
  assert.deepEqual(refused, { ok: false, error: 'disconnecting clients is not allowed here (control.allow-kill)' });
});

test('management mode: status through the control socket carries bytes from OpenVPN', async (t) => {
  const { h } = await labWithControl(t, 'management');
  const carol = await h.lab.startClient({ commonName: 'carol', port: h.port });
  await carol.waitConnected();
  const row = await waitFor('carol with bytes', () => json(h.configPath).find((r) => r.commonName === 'carol' && (r.bytesReceived ?? 0) > 0));
  assert.equal(row.instance, 'e2e');
  assert.ok((row.bytesSent ?? 0) > 0);
  assert.match(row.vpnAddress ?? '', /^10\./);
});

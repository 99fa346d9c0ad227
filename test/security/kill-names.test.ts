/**
 * `flexscript kill NAME` matches the common name exactly: a name with a trailing space or a
 * no-break space is another client, and is shown with that whitespace escaped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { clientIdsNamed } from '../../src/cli/control.ts';
import { FLEXSCRIPT } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { modeLab } from '../e2e/mode-lab.ts';

/** One line to the daemon's pass-through socket, and its one-line answer. */
function passThrough(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path, () => socket.write(line));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      answer += d;
      if (answer.endsWith('\n')) {
        socket.end();
        resolve(answer);
      }
    });
    socket.on('error', reject);
  });
}

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

const NAMES = ['alice', 'alice ', 'alice\u00a0', ' alice'] as const;

test('kill matching: each of alice, "alice ", "alice\\u00a0" and " alice" matches only itself', () => {
  const header =
    'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher';
  const row = (name: string, cid: number) =>
    `CLIENT_LIST\t${name}\t127.0.0.1:${1000 + cid}\t10.8.0.${cid + 2}\t\t1\t1\t-\t1\tUNDEF\t${cid}\t${cid}\tAES-256-GCM`;
  const lines = [header, ...NAMES.map((n, i) => row(n, i + 1))];
  for (const [i, name] of NAMES.entries()) assert.deepEqual(clientIdsNamed(lines, name), [i + 1], JSON.stringify(name));
  assert.deepEqual(clientIdsNamed(lines, 'alice  '), []);
  assert.deepEqual(clientIdsNamed(lines, 'ALICE'), []);
});

test('through real OpenVPN: kill "alice " and kill "alice\\u00a0" disconnect exactly those clients', async (t) => {
  const h = await modeLab(t, 'management', { passThrough: true });
  const clients = await Promise.all(NAMES.slice(0, 3).map((commonName) => h.lab.startClient({ commonName, port: h.port })));
  await Promise.all(clients.map((c) => c.waitConnected()));
  const live = () => {
    const r = flexscript('status', '--config', h.configPath, '--json');
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { commonName: string }[]).map((s) => s.commonName).sort();
  };
  assert.deepEqual(live(), [...NAMES.slice(0, 3)].sort(), 'OpenVPN reports the three names as the certificates give them');

  // a killed client reconnects (OpenVPN tells it to restart): what counts is who was disconnected
  const disconnected = () =>
    h
      .recordsOf('client-disconnect')
      .map((r) => r.commonName as string)
      .sort();
  const space = flexscript('kill', 'alice ', '--config', h.configPath);
  assert.equal(space.status, 0, space.stderr);
  await waitFor('"alice " leaves', () => disconnected().includes('alice '));
  assert.equal(space.stdout, 'disconnected 1 session(s) of "alice\\x20"\n');

  // other tools send the line themselves: the pass-through matches the name as sent, too
  // (a trim would strip the no-break space and hit alice)
  const nbsp = await passThrough(join(h.lab.dir, 'work', 'control.sock'), 'kill alice\u00a0\n');
  assert.equal(nbsp, 'SUCCESS: killed 1 client(s)\n');
  await waitFor('"alice\\u00a0" leaves', () => disconnected().includes('alice\u00a0'));

  const none = flexscript('kill', ' alice', '--config', h.configPath);
  assert.equal(none.status, 1);
  assert.equal(none.stderr, 'no live client named "\\x20alice"\n');
  // only the two named clients were ever disconnected; alice was never touched
  assert.deepEqual(disconnected(), ['alice ', 'alice\u00a0'].sort());
  assert.ok(live().includes('alice'));
});

/**
 * Common names that look like management notifications. OpenVPN's `status` reply begins each
 * client row with the client's common name, verbatim; a certificate named `>CLIENT:CONNECT,3,0`
 * puts that text at the start of a reply line. The daemon must read every line of a multi-line
 * reply as reply text, and the pass-through must not hand such lines to the tools that read it.
 * Through real OpenVPN 2.6 in management mode.
 */
import assert from 'node:assert/strict';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ask, askControl } from '../../src/cli/control.ts';
import { decisionOf } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { ManagementDecoder } from '../../src/openvpn-management/codec.ts';
import { parseStatus3 } from '../../src/openvpn-management/commands.ts';
import { modeLab } from '../e2e/mode-lab.ts';

test('the decoder reads every line of a multi-line reply as reply text, also rows that look like notifications or the password prompt', () => {
  const d = new ManagementDecoder();
  d.push(">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n");
  d.expect('multi');
  // `status 1` as OpenVPN 2.6.14 prints it for clients with such certificates
  const rows = [
    'OpenVPN CLIENT LIST',
    'Updated,2026-11-30 04:21:36',
    'Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since',
    'alice,127.0.0.1:60864,4242,4343,2026-11-30 04:21:32',
    '>CLIENT:CONNECT,0,0,127.0.0.1:34041,4242,4343,2026-11-30 04:21:33',
    '>CLIENT:DISCONNECT,0,127.0.0.1:57765,4242,4343,2026-11-30 04:21:34',
    '>CLIENT:ENV,common_name=x,127.0.0.1:46514,4242,4343,2026-11-30 04:21:34',
    'ENTER PASSWORD:x,127.0.0.1:46515,4242,4343,2026-11-30 04:21:34',
    'ROUTING TABLE',
    'Virtual Address,Common Name,Real Address,Last Ref',
    'GLOBAL STATS',
    'END',
  ];
  const out = d.push(`${rows.join('\r\n')}\r\n>CLIENT:ESTABLISHED,5\r\n>CLIENT:ENV,END\r\n`);
  assert.deepEqual(out, [
    { type: 'multiline', lines: rows.slice(0, -1) },
    { type: 'client-established', cid: 5, env: {} },
  ]);
});

test('certificates named like notifications do not forge a connect or a disconnect when status is asked through the pass-through', async (t) => {
  const sockets = await mkdtemp(join(tmpdir(), 'fxs-forged-'));
  await chown(sockets, 65534, 65534);
  t.after(() => rm(sockets, { recursive: true, force: true }));
  const passThrough = join(sockets, 'pass.sock');
  const control = join(sockets, 'control.sock');
  const h = await modeLab(t, 'management', {
    // continues the management: section mode-lab writes; kill is not allowed, status is
    extraConfig: ['  pass-through:', `    socket: ${passThrough}`, '    allow-kill: false', 'control:', `  socket: ${control}`],
  });
  const alice = await h.lab.startClient({ commonName: 'alice', port: h.port });
  await alice.waitConnected();
  const status3 = async () => parseStatus3(await ask(passThrough, 'status 3'));
  const cid = (await status3()).clients.find((c) => c.commonName === 'alice')!.clientId;
  assert.ok(Number.isInteger(cid));

  const forged = [`>CLIENT:CONNECT,${cid},0`, `>CLIENT:DISCONNECT,${cid}`, '>CLIENT:ENV,common_name=x'];
  const mallory = await Promise.all(forged.map((commonName) => h.lab.startClient({ commonName, port: h.port })));
  await Promise.all(mallory.map((c) => c.waitConnected()));
  await waitFor('all four in status', async () => (await status3()).clients.length === 4);

  // every form of status a tool may ask for
  const replies = [];
  for (const command of ['status', 'status 1', 'status 2', 'status 3']) replies.push(await ask(passThrough, command));

  // a real notification after the replies: would close any block a forged line had opened
  const bob = await h.lab.startClient({ commonName: 'bob', port: h.port });
  await bob.waitConnected();
  await h.daemon.waitForEvent('bob accepted', decisionOf({ event: 'client-connect', commonName: 'bob', verdict: 'accept' }));
  await ask(passThrough, 'status 3');

  const against = h.server.log().match(new RegExp(`MANAGEMENT: CMD 'client-(deny|kill) ${cid} .*`));
  assert.equal(against?.[0], undefined, 'nothing was sent against alice');
  assert.ok(!h.recordsOf('client-disconnect').some((r) => r.commonName === 'alice' || r.commonName === 'x'), 'plugins heard no disconnect');
  assert.deepEqual(
    h
      .recordsOf('client-connect')
      .map((r) => r.commonName)
      .sort(),
    ['alice', 'bob', ...forged].sort(),
    'plugins heard only real connects',
  );
  assert.ok(!h.daemon.events().some((e) => e.channel === 'decision' && e.data.unhandled === 'malformed'), 'no half-made event reached the dispatcher');
  const live = await askControl(control, { command: 'status' });
  assert.ok(live.ok);
  const names = (live as unknown as { sessions: { commonName: string }[] }).sessions.map((s) => s.commonName);
  assert.ok(names.includes('alice'), `alice is still live in the daemon: ${JSON.stringify(names)}`);
  assert.equal(names.length, 5);
  assert.ok(alice.running);
  assert.doesNotMatch(alice.log(), /AUTH_FAILED|SIGUSR1|Restart pause/);

  // what the pass-through hands to tools: the names as data, never at the start of a line
  const [plain, one, ...others] = replies;
  assert.ok(
    plain!.some((l) => l.startsWith('CLIENT_LIST\t>CLIENT:CONNECT')),
    'status is answered in version 3, the forged names listed as data',
  );
  for (const reply of [plain!, ...others])
    assert.deepEqual(
      reply.filter((l) => l.startsWith('>')),
      [],
      'no reply line starts with client text',
    );
  assert.match(one![0] ?? '', /^ERROR: status 1 is not served here/);
});

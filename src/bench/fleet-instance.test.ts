/**
 * The simulated OpenVPN server speaks the management protocol as the daemon's own client expects
 * it: the product's ManagementClient attaches, releases the hold, reads `status 3`, and answers
 * connects; every notification it decodes is what a real OpenVPN 2.6 would send.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ManagementMessage } from '../openvpn-management/codec.ts';
import { ManagementClient } from '../openvpn-management/management-client.ts';
import { simpleCommand } from '../openvpn-management/commands.ts';
import { waitFor } from '../lab/wait.ts';
import { FleetInstance } from './fleet-instance.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function attached(t: import('node:test').TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-fleet-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const instance = new FleetInstance({ name: 'vpn1', socket: join(dir, 'vpn1.sock'), pid: 4242, pool: '10.160' });
  await instance.listen();
  t.after(() => instance.close());
  const client = new ManagementClient({ name: 'vpn1', path: join(dir, 'vpn1.sock'), log: quiet, commandTimeoutMs: 5000 });
  const messages: ManagementMessage[] = [];
  client.on('message', (m: ManagementMessage) => messages.push(m));
  client.connect();
  t.after(() => client.close());
  // management-hold: nobody connects before the daemon released it
  await instance.released;
  return { instance, client, messages };
}

test('a simulated server greets, holds until released, and answers pid, version, status 3 and a kill of no client as OpenVPN does', async (t) => {
  const { instance, client, messages } = await attached(t);
  assert.ok(messages.some((m) => m.type === 'info' && m.text.startsWith('OpenVPN Management Interface Version 5')));
  assert.ok(messages.some((m) => m.type === 'hold'));
  assert.equal(((await client.command(simpleCommand('pid'))) as { text: string }).text, 'pid=4242');
  const version = await client.command(simpleCommand('version'));
  assert.equal(version.type, 'multiline');
  assert.match((version as { lines: string[] }).lines.join('\n'), /^OpenVPN Version: OpenVPN 2\.6\.\d+ .*\nManagement Version: 5$/);
  assert.deepEqual((await client.status()).clients, []);
  await assert.rejects(
    client.command(simpleCommand('load-stats')).then(() => client.clientKill(99)),
    /client-kill command failed/,
  );
  assert.equal(instance.commands.get('hold'), 1, 'the hold was released once');
});

test('a connect carries its identity and peer info; client-auth with config lines is answered, then ADDRESS and ESTABLISHED follow and status 3 lists the client', async (t) => {
  const { instance, client, messages } = await attached(t);
  const answered = instance.connect('fleet-7');
  const connect = await waitFor('the CONNECT', () => messages.find((m) => m.type === 'client-connect'));
  assert.equal(connect.type, 'client-connect');
  if (connect.type !== 'client-connect') return;
  assert.equal(connect.reauth, false);
  assert.equal(connect.env.common_name, 'fleet-7');
  assert.equal(connect.env.untrusted_ip, '127.0.0.1');
  assert.match(connect.env.untrusted_port ?? '', /^\d+$/);
  assert.equal(connect.env.IV_VER, '2.6.14');
  await client.clientAuth(connect.cid, connect.kid, ['push "route 10.20.0.0 255.255.0.0"']);
  const outcome = await answered;
  assert.equal(outcome.verdict, 'accept');
  assert.deepEqual(outcome.config, ['push "route 10.20.0.0 255.255.0.0"']);
  assert.ok(outcome.ms >= 0);
  const address = await waitFor('the ADDRESS', () => messages.find((m) => m.type === 'client-address'));
  assert.deepEqual(address, { type: 'client-address', cid: connect.cid, address: '10.160.0.2', primary: true });
  await waitFor('ESTABLISHED', () => messages.some((m) => m.type === 'client-established' && m.env.common_name === 'fleet-7'));
  assert.equal(instance.live, 1);
  const listed = (await client.status()).clients;
  assert.deepEqual(
    listed.map((c) => [c.commonName, c.clientId, c.virtualAddress]),
    [['fleet-7', connect.cid, '10.160.0.2']],
  );
  // a renegotiation: REAUTH with the next key id, answered without config
  const again = instance.reauth(connect.cid);
  const reauth = await waitFor('the REAUTH', () => messages.find((m) => m.type === 'client-connect' && m.reauth));
  assert.equal(reauth.type === 'client-connect' && reauth.kid, connect.kid + 1);
  await client.clientAuth(connect.cid, connect.kid + 1, []);
  assert.equal((await again).verdict, 'accept');
  // leaving: DISCONNECT with bytes and duration
  assert.equal(instance.disconnect(connect.cid), 'fleet-7');
  const gone = await waitFor('the DISCONNECT', () => messages.find((m) => m.type === 'client-disconnect'));
  assert.ok(gone.type === 'client-disconnect' && Number(gone.env.bytes_received) > 0 && Number(gone.env.bytes_sent) > 0);
  assert.ok(gone.type === 'client-disconnect' && gone.env.time_duration !== undefined && gone.env.common_name === 'fleet-7');
  assert.equal(instance.live, 0);
  assert.equal(instance.errors, 0);
});

test('a denied client leaves with an empty env; client-kill drops a live one; an answer for a client that left is an ERROR', async (t) => {
  const { instance, client, messages } = await attached(t);
  const denied = instance.connect('mallory');
  const c1 = await waitFor('the first CONNECT', () => messages.find((m) => m.type === 'client-connect'));
  if (c1.type !== 'client-connect') return;
  await client.clientDeny(c1.cid, c1.kid, 'no', 'not you');
  const outcome = await denied;
  assert.equal(outcome.verdict, 'deny');
  assert.equal(outcome.reason, 'no');
  const left = await waitFor('the denied DISCONNECT', () => messages.find((m) => m.type === 'client-disconnect'));
  assert.deepEqual(left, { type: 'client-disconnect', cid: c1.cid, env: {} });
  await assert.rejects(client.clientAuth(c1.cid, c1.kid, []), /client-auth command failed/);

  const accepted = instance.connect('alice');
  const c2 = await waitFor('the second CONNECT', () => messages.find((m) => m.type === 'client-connect' && m.env.common_name === 'alice'));
  if (c2.type !== 'client-connect') return;
  await client.clientPendingAuth(c2.cid, c2.kid, '', 60);
  await client.clientAuth(c2.cid, c2.kid, []);
  await accepted;
  await client.clientKill(c2.cid, 'HALT');
  const killed = await waitFor('the killed DISCONNECT', () => messages.find((m) => m.type === 'client-disconnect' && m.cid === c2.cid));
  assert.ok(killed.type === 'client-disconnect' && killed.env.common_name === 'alice');
  assert.equal(instance.live, 0);
  assert.equal(instance.errors, 1, 'the late client-auth');
});

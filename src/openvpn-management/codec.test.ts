import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ManagementDecoder, type ManagementMessage, type ReplyShape } from './codec.ts';
import { clientAuth, clientDeny, clientKill, clientPendingAuth, parseStatus3 } from './commands.ts';

/** Recorded from OpenVPN 2.6.14: password prompt, commands, two connects (one denied), a re-key, status, a disconnect. */
const SESSION = readFileSync(new URL('./fixtures/session.txt', import.meta.url));
/** The replies the recorded session's commands expect, in the order they were written. */
const SHAPES: ReplyShape[] = [
  'single',
  'multi',
  'single',
  'single',
  'single',
  'single',
  'single',
  'single',
  'single',
  'single',
  'multi',
  'single',
  'single',
  'single',
  'single',
  'multi',
];

function decode(chunks: Buffer[]): ManagementMessage[] {
  const d = new ManagementDecoder();
  for (const s of SHAPES) d.expect(s);
  return chunks.flatMap((c) => d.push(c));
}

test('a recorded session decodes into typed messages', () => {
  const all = decode([SESSION]);
  const count = (type: string) => all.filter((m) => m.type === type).length;
  assert.equal(count('unknown'), 0);
  assert.equal(count('password-prompt'), 1);
  assert.equal(count('multiline'), 3);
  assert.equal(count('error'), 1);
  assert.equal(count('client-address'), 1);
  assert.equal(count('client-established'), 1);
  assert.equal(count('client-disconnect'), 1);
  assert.ok(count('log') > 10);
  assert.ok(count('bytecount-cli') >= 1);
  const connects = all.filter((m) => m.type === 'client-connect');
  assert.deepEqual(
    connects.map((m) => [m.cid, m.kid, m.reauth]),
    [
      [0, 1, false],
      [1, 1, false],
      [0, 3, true],
    ],
  );
  // values keep their commas, equals signs and quotes
  assert.equal(connects[1]!.env.common_name, 'b,o=b "x"');
  assert.equal(connects[1]!.env.password, 'pw,with=stuff');
  assert.equal(connects[1]!.env.username, 'bob');
  assert.deepEqual(
    all.find((m) => m.type === 'client-address'),
    { type: 'client-address', cid: 0, address: '10.77.75.2', primary: true },
  );
  assert.deepEqual(
    all.find((m) => m.type === 'error'),
    { type: 'error', text: "unknown command, enter 'help' for more options" },
  );
  const version = all.find((m) => m.type === 'multiline');
  assert.deepEqual(version?.type === 'multiline' && version.lines[1], 'Management Version: 5');
});

test('reads split at any byte give the same messages', () => {
  const whole = decode([SESSION]);
  for (let i = 1; i < SESSION.length; i += 3) {
    assert.deepEqual(decode([SESSION.subarray(0, i), SESSION.subarray(i)]), whole, `split at ${i}`);
  }
  const bytes = Array.from({ length: SESSION.length }, (_, i) => SESSION.subarray(i, i + 1));
  assert.deepEqual(decode(bytes), whole, 'one byte at a time');
});

test('a split inside a UTF-8 character keeps the character', () => {
  const d = new ManagementDecoder();
  const text = Buffer.from('>CLIENT:CONNECT,4,1\r\n>CLIENT:ENV,common_name=Zoë 雪\r\n>CLIENT:ENV,END\r\n');
  const cut = text.indexOf(Buffer.from('雪')) + 1;
  const out = [...d.push(text.subarray(0, cut)), ...d.push(text.subarray(cut))];
  assert.deepEqual(out, [{ type: 'client-connect', cid: 4, kid: 1, reauth: false, env: { common_name: 'Zoë 雪' } }]);
});

test('notifications before a reply are delivered; inside a multi-line reply every line up to END is reply text', () => {
  const d = new ManagementDecoder();
  d.expect('multi');
  const out = d.push(
    '>BYTECOUNT_CLI:3,10,20\r\nTITLE\tx\r\n>CLIENT:CONNECT,3,0,127.0.0.1:1,1\r\nENTER PASSWORD:x\r\nSUCCESS: y\r\nEND\r\n>HOLD:Waiting for hold release:0\r\n',
  );
  assert.deepEqual(out, [
    { type: 'bytecount-cli', cid: 3, bytesIn: 10, bytesOut: 20 },
    { type: 'multiline', lines: ['TITLE\tx', '>CLIENT:CONNECT,3,0,127.0.0.1:1,1', 'ENTER PASSWORD:x', 'SUCCESS: y'] },
    { type: 'hold', text: 'Waiting for hold release:0' },
  ]);
});

test('an unknown line is returned as unknown, never thrown', () => {
  const d = new ManagementDecoder();
  assert.deepEqual(d.push('>WHATEVER:new thing\r\nstray text\r\n>CLIENT:FUTURE,1\r\n'), [
    { type: 'unknown', line: '>WHATEVER:new thing' },
    { type: 'unknown', line: 'stray text' },
    { type: 'unknown', line: '>CLIENT:FUTURE,1' },
  ]);
});

test('commands have exact text and client-controlled text cannot inject a second command', () => {
  const text = (c: { text: string }) => c.text;
  assert.equal(
    text(clientAuth(3, 1, ['push "route 10.0.0.0 255.0.0.0"', 'ifconfig-push 10.8.0.9 255.255.255.0'])),
    'client-auth 3 1\npush "route 10.0.0.0 255.0.0.0"\nifconfig-push 10.8.0.9 255.255.255.0\nEND\n',
  );
  assert.equal(text(clientAuth(3, 1, [])), 'client-auth-nt 3 1\n');
  assert.equal(text(clientDeny(3, 2, 'bad user "x\\y"', 'go away')), 'client-deny 3 2 "bad user \\"x\\\\y\\"" "go away"\n');
  assert.equal(text(clientPendingAuth(3, 2, 'WEB_AUTH::https://sso', 60)), 'client-pending-auth 3 2 "WEB_AUTH::https://sso" 60\n');
  assert.equal(text(clientKill(7)), 'client-kill 7\n');
  // line breaks in text a client controls are data: they never end the command
  assert.equal(text(clientDeny(1, 1, 'eve\nclient-kill 0')), 'client-deny 1 1 "eve_client-kill 0"\n');
  assert.equal(text(clientDeny(1, 1, 'ok', 'x\r\nsignal SIGTERM')), 'client-deny 1 1 "ok" "x__signal SIGTERM"\n');
  assert.throws(() => clientAuth(1, 1, ['push "a"', 'END']), /END/);
  assert.throws(() => clientAuth(1, 1, ['push "a"\nclient-kill 0']), /control character/);
  assert.throws(() => clientKill(-1), /not a client id/);
});

test('status 3 is parsed by column names', () => {
  const status = decode([SESSION]).filter((m) => m.type === 'multiline')[1]!;
  const parsed = parseStatus3(status.type === 'multiline' ? status.lines : []);
  assert.equal(parsed.time, 1795893110);
  assert.deepEqual(parsed.clients[0], {
    commonName: 'alice',
    realAddress: '127.0.0.1:45572',
    virtualAddress: '10.77.75.2',
    virtualIPv6Address: '',
    bytesReceived: 2055,
    bytesSent: 2138,
    connectedSince: 1795893109,
    username: undefined,
    clientId: 0,
    peerId: 0,
    cipher: 'AES-256-GCM',
  });
  assert.equal(parsed.clients[1]?.username, 'bob');
  assert.deepEqual(parsed.routes, [{ virtualAddress: '10.77.75.2', commonName: 'alice', realAddress: '127.0.0.1:45572', lastRef: 1795893110 }]);
});

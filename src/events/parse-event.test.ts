import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventParseError } from '../errors.ts';
import type { EventMap, EventName } from './event-map.ts';
import { parseCrResponse, parseEvent, type RawEvent } from './parse-event.ts';

const raw = <N extends EventName>(name: N, env: Record<string, string>, args: string[] = []): RawEvent & { name: N } => ({
  name,
  instance: 'vpn1',
  source: 'hook',
  env,
  args,
});
/** parseEvent, typed by the event name it was given (and checked to keep it) */
const parseAs = <N extends EventName>(input: RawEvent & { name: N }): EventMap[N] => {
  const event = parseEvent(input);
  assert.equal(event.name, input.name);
  return event as EventMap[N];
};

test('client-connect: identity, addresses, peer info, raw env kept', () => {
  const env = {
    common_name: '$(id)',
    username: 'bob',
    trusted_ip: '198.51.100.7',
    trusted_port: '51234',
    ifconfig_pool_remote_ip: '10.8.0.6',
    ifconfig_pool_remote_ip6: 'fd00::1000',
    time_unix: '1700000000',
    IV_PLAT: 'linux',
    UV_X: '1',
    other: 'y',
  };
  const e = parseAs(raw('client-connect', env, ['/tmp/cc']));
  assert.equal(e.commonName, '$(id)');
  assert.equal(e.realAddress, '198.51.100.7');
  assert.equal(e.realPort, 51234);
  assert.equal(e.vpnAddress6, 'fd00::1000');
  assert.deepEqual(e.peerInfo, { IV_PLAT: 'linux', UV_X: '1' });
  assert.equal(e.env, env);
});

test('client-disconnect: bytes and duration as numbers', () => {
  const e = parseAs(
    raw('client-disconnect', {
      common_name: 'a',
      bytes_received: '123',
      bytes_sent: '456',
      time_duration: '78',
      trusted_ip6: '2001:db8::1',
      trusted_port: '1',
    }),
  );
  assert.deepEqual([e.bytesReceived, e.bytesSent, e.duration, e.realAddress], [123, 456, 78, '2001:db8::1']);
});

test('learn-address: operations, and delete carries no common name', () => {
  const add = parseAs(raw('learn-address', {}, ['add', '10.8.0.6', 'alice']));
  assert.deepEqual([add.operation, add.address, add.commonName], ['add', '10.8.0.6', 'alice']);
  const del = parseAs(raw('learn-address', {}, ['delete', 'fd00::1000/64']));
  assert.equal(del.commonName, undefined);
});

test('tls-verify, up and ipchange arguments', () => {
  const t = parseAs(raw('tls-verify', { X509_0_CN: 'alice', untrusted_ip: '127.0.0.1', untrusted_port: '5' }, ['0', 'CN=alice']));
  assert.deepEqual([t.depth, t.subject, t.commonName, t.realAddress], [0, 'CN=alice', 'alice', '127.0.0.1']);
  const up = parseAs(raw('up', {}, ['tun0', '1500', '0', '10.8.0.1', '255.255.255.0', 'init']));
  assert.deepEqual([up.dev, up.tunMtu, up.ifconfigLocal, up.ifconfigRemoteOrNetmask, up.phase], ['tun0', 1500, '10.8.0.1', '255.255.255.0', 'init']);
  const ip = parseAs(raw('ipchange', {}, ['192.0.2.1', '1194']));
  assert.deepEqual([ip.address, ip.port], ['192.0.2.1', 1194]);
});

test('malformed input is refused with the field named', () => {
  const cases: [RawEvent, RegExp][] = [
    [raw('client-connect', { trusted_ip: '1.2.3.4' }), /client-connect: common_name: missing/],
    [raw('client-connect', { common_name: 'a', trusted_ip: '1.2.3.4; rm -rf /' }), /trusted_ip: not an IPv4\/6 address/],
    [raw('client-connect', { common_name: 'a', trusted_port: '99999' }), /trusted_port: not a port/],
    [raw('client-connect', { common_name: 'a', ifconfig_pool_remote_ip: 'fd00::1' }), /ifconfig_pool_remote_ip: not an IPv4 address/],
    [raw('client-disconnect', { common_name: 'a', bytes_sent: '-1' }), /bytes_sent: not a non-negative integer/],
    [raw('learn-address', {}, ['flush', '10.0.0.1']), /arg 1 \(operation\): expected add, update or delete/],
    [raw('learn-address', {}, ['add', '10.0.0.1;id']), /arg 2 \(address\): not an address/],
    [raw('up', {}, ['tun0', '1500', '0', '10.8.0.1', '255.255.255.0', 'sideways']), /arg 6: expected init or restart/],
    [raw('client-connect', { common_name: 'x'.repeat(5000) }), /longer than 4096/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => parseEvent(input),
      (err: unknown) => err instanceof EventParseError && message.test(err.message),
      String(message),
    );
  }
});

test('a username on connect and disconnect is identity only when verified; the claim stays in env', () => {
  for (const name of ['client-connect', 'client-disconnect'] as const) {
    const env = { common_name: 'guest-17', username: 'carol', trusted_ip: '198.51.100.7', trusted_port: '1' };
    const claimed = parseAs(raw(name, env));
    assert.equal(claimed.username, undefined, name);
    assert.equal(claimed.env.username, 'carol');
    assert.equal(parseAs({ ...raw(name, env), usernameVerified: true }).username, 'carol', name);
    // checked either way
    assert.throws(() => parseEvent(raw(name, { ...env, username: 'x'.repeat(5000) })), /username: longer than 4096/);
  }
  // user-pass-verify carries the claim: it is what that event verifies
  assert.equal(parseAs(raw('user-pass-verify', { common_name: 'guest-17', username: 'carol' })).username, 'carol');
});

test('client-crresponse: who answered, and the answer decoded strictly (base64 of UTF-8 text, bounded)', () => {
  const env = { common_name: 'alice', untrusted_ip: '192.0.2.7', untrusted_port: '40001' };
  const parse = (response: string | undefined) => parseCrResponse({ instance: 'vpn1', source: 'hook', env, response });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.deepEqual(parse(`${b64('123 456')}\n`), {
    name: 'client-crresponse',
    instance: 'vpn1',
    source: 'hook',
    commonName: 'alice',
    realAddress: '192.0.2.7',
    realPort: 40001,
    response: '123 456',
  });
  // hostile answers are data, or nothing
  assert.equal(parse(b64('$(id)`x`')).response, '$(id)`x`');
  for (const bad of ['!!', 'MTIz*', b64('a\0b'), Buffer.from([0xff, 0xfe]).toString('base64'), b64('x'.repeat(4000)), undefined])
    assert.equal(parse(bad).response, undefined, String(bad).slice(0, 20));
  assert.throws(() => parseCrResponse({ instance: 'vpn1', source: 'hook', env: { ...env, untrusted_ip: 'nope' }, response: '' }), EventParseError);
});

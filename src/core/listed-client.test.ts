import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStatus3 } from '../openvpn-management/commands.ts';
import { listedClient, splitAddress } from './listed-client.ts';

const STATUS = [
  'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher',
  'CLIENT_LIST\talice\t127.0.0.1:45572\t10.77.75.2\tfd00:e2e::1000\t2055\t2138\t2026-11-28 19:11:49\t1795893109\tUNDEF\t0\t0\tAES-256-GCM',
  'CLIENT_LIST\tx$(reboot);"\t[2001:db8::7]:40466\t\t\t2041\t1926\t2026-11-28 19:11:49\t1795893110\tbob\t3\t1\tAES-256-GCM',
  'END',
];

test('a status row becomes the client model, keyed as the source that serves it names clients', () => {
  const [alice, other] = parseStatus3(STATUS).clients;
  assert.deepEqual(listedClient('office', alice!, 'management'), {
    instance: 'office',
    key: { via: 'management', instance: 'office', cid: 0 },
    commonName: 'alice',
    username: undefined,
    realAddress: '127.0.0.1',
    realPort: 45572,
    vpnAddress: '10.77.75.2',
    vpnAddress6: 'fd00:e2e::1000',
    connectedAt: 1795893109_000,
    bytesReceived: 2055,
    bytesSent: 2138,
  });
  const hook = listedClient('vpn1', other!, 'hook');
  assert.deepEqual(hook.key, { via: 'hook', instance: 'vpn1', realAddress: '2001:db8::7', realPort: 40466, commonName: 'x$(reboot);"' });
  // the username is what the client sent: whoever rebuilds decides whether it is identity
  assert.equal(hook.username, 'bob');
  assert.equal(hook.vpnAddress, undefined, 'no address yet: none, not an empty string');
  assert.equal(hook.vpnAddress6, undefined);
});

test('real addresses as OpenVPN writes them', () => {
  assert.deepEqual(splitAddress('198.51.100.7:51234'), ['198.51.100.7', 51234]);
  assert.deepEqual(splitAddress('udp4:198.51.100.7:51234'), ['198.51.100.7', 51234]);
  assert.deepEqual(splitAddress('[2001:db8::1]:1194'), ['2001:db8::1', 1194]);
  assert.deepEqual(splitAddress('2001:db8::1'), ['2001:db8::1', undefined]);
  assert.deepEqual(splitAddress('not an address'), [undefined, undefined]);
});

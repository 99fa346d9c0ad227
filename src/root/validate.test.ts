import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RootErrorCode } from './protocol.ts';
import { parseRootConfig } from './root-config.ts';
import { parseRequestLine, type ValidRequest } from './validate.ts';

const config = parseRootConfig(
  `
table: flexscript
vpn-interfaces: [tun0, tun1]
vpn-networks: [10.8.0.0/24, "2001:db8::/64", "fd00::/64"]
groups:
  staff: { allow: [{ to: 10.0.0.0/24, protocol: tcp, ports: [22] }] }
  guests: {}
routes:
  allowed: [10.9.0.0/16, fd00:9::/48]
  tables: [254, 100]
`,
  'root.yaml',
);

function accept(request: object): ValidRequest {
  const parsed = parseRequestLine(JSON.stringify(request), config);
  assert.ok(parsed.ok, `expected acceptance of ${JSON.stringify(request)}: ${parsed.ok ? '' : parsed.error.message}`);
  return parsed.request;
}

function refuse(line: string | object, code: string): string {
  const parsed = parseRequestLine(typeof line === 'string' ? line : JSON.stringify(line), config);
  assert.equal(parsed.ok, false, `expected refusal of ${JSON.stringify(line)}`);
  if (parsed.ok) return '';
  assert.equal(parsed.error.code, code, `${JSON.stringify(line)}: ${parsed.error.message}`);
  return parsed.error.message;
}

describe('validate: accepted requests', () => {
  const table: [object, (r: ValidRequest) => void][] = [
    [{ id: 0, action: 'ensure' }, (r) => assert.equal(r.action, 'ensure')],
    [{ id: 1, action: 'list' }, (r) => assert.equal(r.action, 'list')],
    [{ id: 2, action: 'set-add', group: 'staff', address: '10.8.0.2' }, (r) => r.action === 'set-add' && assert.equal(r.address.text, '10.8.0.2')],
    // IPv6 comes back canonical, as nft prints it
    [
      { id: 3, action: 'set-remove', group: 'guests', address: '2001:DB8:0:0::5' },
      (r) => r.action === 'set-remove' && assert.equal(r.address.text, '2001:db8::5'),
    ],
    [{ id: 4, action: 'conntrack-flush', address: 'FD00:0::7' }, (r) => r.action === 'conntrack-flush' && assert.equal(r.address.text, 'fd00::7')],
    [
      { id: 5, action: 'route-add', network: '10.9.3.0/24', via: '10.8.0.2', dev: 'tun0' },
      (r) => {
        assert.ok(r.action === 'route-add');
        assert.equal(r.route.network.text, '10.9.3.0/24');
        assert.equal(r.route.table, 254, 'the first configured table is the default');
        assert.equal(r.route.via?.text, '10.8.0.2');
      },
    ],
    [
      { id: 6, action: 'route-remove', network: 'fd00:9:0:1::/64', dev: 'tun1', table: 100 },
      (r) => r.action === 'route-remove' && assert.equal(r.route.dev, 'tun1'),
    ],
    [{ id: 7, action: 'route-add', network: '10.9.0.5/32', dev: 'tun0' }, (r) => r.action === 'route-add' && assert.equal(r.route.network.prefix, 32)],
    [
      { id: 8, action: 'reconcile', sets: { staff: ['10.8.0.2', '10.8.0.2', 'fd00::2'], guests: [] }, routes: [{ network: '10.9.1.0/24', dev: 'tun0' }] },
      (r) => {
        assert.ok(r.action === 'reconcile');
        assert.deepEqual(
          r.sets.get('staff')?.map((a) => a.text),
          ['10.8.0.2', 'fd00::2'],
          'duplicates collapse',
        );
        assert.equal(r.routes.length, 1);
      },
    ],
  ];
  for (const [request, check] of table) {
    it(`${JSON.stringify(request)}`, () => check(accept(request)));
  }
});

describe('validate: refused requests', () => {
  const long = 'a'.repeat(300);
  const table: [string | object, string][] = [
    ['not json', RootErrorCode.BAD_JSON],
    ['{"id":1,"action":"list"', RootErrorCode.BAD_JSON],
    ['[1,2]', RootErrorCode.BAD_REQUEST],
    ['null', RootErrorCode.BAD_REQUEST],
    [{ action: 'list' }, RootErrorCode.BAD_REQUEST],
    [{ id: -1, action: 'list' }, RootErrorCode.BAD_REQUEST],
    [{ id: 1.5, action: 'list' }, RootErrorCode.BAD_REQUEST],
    [{ id: '1', action: 'list' }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'flush-ruleset' }, RootErrorCode.UNKNOWN_ACTION],
    [{ id: 1, action: 'constructor' }, RootErrorCode.UNKNOWN_ACTION],
    [{ id: 1 }, RootErrorCode.UNKNOWN_ACTION],
    [{ id: 1, action: 'list', extra: true }, RootErrorCode.BAD_REQUEST],
    ['{"id":1,"action":"list","__proto__":{"x":1}}', RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'set-add', group: 'staff', address: '10.8.0.2', set: 'g_staff_v4' }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'set-add', group: 'admins', address: '10.8.0.2' }, RootErrorCode.UNKNOWN_GROUP],
    [{ id: 1, action: 'set-add', group: 'toString', address: '10.8.0.2' }, RootErrorCode.UNKNOWN_GROUP],
    [{ id: 1, action: 'set-add', group: long, address: '10.8.0.2' }, RootErrorCode.TOO_LONG],
    [{ id: 1, action: 'set-add', group: 'staff' }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'set-add', group: 'staff', address: 167772162 }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'set-add', group: 'staff', address: '10.8.0.2; nft flush ruleset' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '$(reboot)' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '`id`' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '10.8.0.2\nflush ruleset' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '10.8.0.2 } ; flush ruleset' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: 'example.com' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '10.8.0.0/24' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '010.8.0.2' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: 'fe80::1%tun0' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '0.0.0.0' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: '::' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'set-add', group: 'staff', address: `1.2.3.4${' '.repeat(300)}` }, RootErrorCode.TOO_LONG],
    [{ id: 1, action: 'route-add', network: '0.0.0.0/0', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: '::/0', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: 'default', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.0.0.0/8', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: '192.168.1.0/24', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: 'fd00:8::/64', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: 'fd00:9:1::/64', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: 'fd00:9::/47', dev: 'tun0' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: '10.9.3.1/24', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/33', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/024', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24/1', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.9.3.0', dev: 'tun0' }, RootErrorCode.BAD_NETWORK],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24' }, RootErrorCode.ROUTE_REFUSED],
    // a route names its device: a bare gateway lets the kernel pick one, maybe outside the VPN
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', via: '10.8.0.2' }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', via: '192.168.1.1', dev: 'tun0' }, RootErrorCode.ADDRESS_REFUSED],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', via: '10.8.0.255', dev: 'tun0' }, RootErrorCode.ADDRESS_REFUSED],
    [{ id: 1, action: 'reconcile', sets: {}, routes: [{ network: '10.9.1.0/24', via: '10.8.0.2' }] }, RootErrorCode.ROUTE_REFUSED],
    // only VPN client addresses: not loopback, multicast, other hosts, a network's own or broadcast address
    // ... nor the first address of a pool, which OpenVPN's server directive keeps for the server
    ...[
      '127.0.0.1',
      '::1',
      '224.0.0.1',
      'ff02::1',
      '255.255.255.255',
      '10.99.0.1',
      '8.8.8.8',
      '10.8.0.0',
      '10.8.0.1',
      '10.8.0.255',
      'fd00::',
      'fd00::1',
      '::ffff:10.8.0.2',
    ].flatMap((address): [object, string][] => [
      [{ id: 1, action: 'conntrack-flush', address }, RootErrorCode.ADDRESS_REFUSED],
      [{ id: 1, action: 'set-add', group: 'staff', address }, RootErrorCode.ADDRESS_REFUSED],
      [{ id: 1, action: 'set-remove', group: 'staff', address }, RootErrorCode.ADDRESS_REFUSED],
    ]),
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', dev: 'eth0' }, RootErrorCode.UNKNOWN_DEVICE],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', dev: 'tun0;reboot' }, RootErrorCode.UNKNOWN_DEVICE],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', via: 'fd00::1' }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', dev: 'tun0', table: 255 }, RootErrorCode.UNKNOWN_TABLE],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', dev: 'tun0', table: '100' }, RootErrorCode.UNKNOWN_TABLE],
    [{ id: 1, action: 'route-add', network: '10.9.3.0/24', dev: 'tun0', metric: 1 }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'reconcile', sets: {} }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'reconcile', sets: { admins: [] }, routes: [] }, RootErrorCode.UNKNOWN_GROUP],
    [{ id: 1, action: 'reconcile', sets: { staff: ['10.8.0.2', 'bad'] }, routes: [] }, RootErrorCode.BAD_ADDRESS],
    [{ id: 1, action: 'reconcile', sets: { staff: '10.8.0.2' }, routes: [] }, RootErrorCode.BAD_REQUEST],
    [{ id: 1, action: 'reconcile', sets: {}, routes: [{ network: '0.0.0.0/0', dev: 'tun0' }] }, RootErrorCode.ROUTE_REFUSED],
    [{ id: 1, action: 'reconcile', sets: {}, routes: [{ network: '10.9.1.0/24', dev: 'tun0', x: 1 }] }, RootErrorCode.BAD_REQUEST],
    [
      {
        id: 1,
        action: 'reconcile',
        sets: {},
        routes: [
          { network: '10.9.1.0/24', dev: 'tun0' },
          { network: '10.9.1.0/24', dev: 'tun1' },
        ],
      },
      RootErrorCode.BAD_REQUEST,
    ],
  ];
  for (const [line, code] of table) {
    it(`${typeof line === 'string' ? line : JSON.stringify(line).slice(0, 120)} → ${code}`, () => void refuse(line, code));
  }

  it('keeps the id of a refused request, and null when there is none', () => {
    const parsed = parseRequestLine(JSON.stringify({ id: 42, action: 'nope' }), config);
    assert.ok(!parsed.ok);
    assert.equal(parsed.id, 42);
    const broken = parseRequestLine('}{', config);
    assert.ok(!broken.ok);
    assert.equal(broken.id, null);
  });

  it('quotes and shortens hostile values in messages', () => {
    const message = refuse({ id: 1, action: 'set-add', group: 'staff', address: `1.2.3.4\n${'x'.repeat(200)}` }, RootErrorCode.BAD_ADDRESS);
    assert.ok(!message.includes('\n'), 'no raw newline');
    assert.ok(message.length < 200, message);
  });

  it("refuses an address of this host, such as the server's own VPN address", () => {
    const isLocal = (a: { text: string }) => a.text === '10.8.0.77' || a.text === 'fd00::77';
    for (const address of ['10.8.0.77', 'fd00::77']) {
      for (const request of [
        { id: 1, action: 'conntrack-flush', address },
        { id: 1, action: 'set-add', group: 'staff', address },
        { id: 1, action: 'route-add', network: address.includes(':') ? 'fd00:9::/64' : '10.9.1.0/24', via: address, dev: 'tun0' },
      ]) {
        const parsed = parseRequestLine(JSON.stringify(request), config, isLocal);
        assert.ok(!parsed.ok && parsed.error.code === RootErrorCode.ADDRESS_REFUSED, JSON.stringify(parsed));
        assert.match(parsed.error.message, /an address of this host/);
      }
    }
    assert.ok(parseRequestLine(JSON.stringify({ id: 1, action: 'conntrack-flush', address: '10.8.0.2' }), config, isLocal).ok);
  });

  it('leaves out of a reconcile the elements that are not client addresses, and keeps the rest', () => {
    const parsed = parseRequestLine(
      JSON.stringify({ id: 1, action: 'reconcile', sets: { staff: ['10.8.0.2', '127.0.0.1', '10.99.0.1'] }, routes: [] }),
      config,
    );
    assert.ok(parsed.ok && parsed.request.action === 'reconcile');
    assert.deepEqual(
      parsed.request.sets.get('staff')?.map((a) => a.text),
      ['10.8.0.2'],
    );
    assert.deepEqual(
      parsed.request.skipped.map((s) => s.address),
      ['127.0.0.1', '10.99.0.1'],
    );
  });

  it('refuses too many elements in a reconcile', () => {
    const many = Array.from({ length: 65_537 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255 || 1}`);
    refuse({ id: 1, action: 'reconcile', sets: { staff: many }, routes: [] }, RootErrorCode.TOO_LONG);
  });
});

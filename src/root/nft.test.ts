import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chainRules, ensureCommands, parseTableListing, replaceSetCommands, setOpCommands } from './nft.ts';
import { parseRootConfig } from './root-config.ts';

const config = parseRootConfig(
  `
table: flexscript
vpn-interfaces: [tun0]
vpn-networks: [10.8.0.0/24]
groups:
  staff:
    allow:
      - { to: 10.0.0.0/24, protocol: tcp, ports: [22, "8000-8100"] }
      - { to: fd00::/64, protocol: icmp }
  guests:
    allow:
      - { to: 10.0.5.10/32, protocol: udp, ports: [53] }
      - { to: 10.0.6.0/24 }
      - { to: 10.0.7.0/24, protocol: udp }
`,
  'root.yaml',
);

const iif = { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'tun0' } };
const rule = (...expr: object[]) => ({ add: { rule: { family: 'inet', table: 'flexscript', chain: 'forward', expr: [iif, ...expr] } } });
const saddr = (proto: string, set: string) => ({ match: { op: '==', left: { payload: { protocol: proto, field: 'saddr' } }, right: `@${set}` } });
const daddr = (proto: string, right: unknown) => ({ match: { op: '==', left: { payload: { protocol: proto, field: 'daddr' } }, right } });
const ref = (name: string) => ({ family: 'inet', table: 'flexscript', name });

const expectedRules = [
  rule({ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }),
  rule(
    saddr('ip', 'g_staff_v4'),
    daddr('ip', { prefix: { addr: '10.0.0.0', len: 24 } }),
    { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { set: [22, { range: [8000, 8100] }] } } },
    { accept: null },
  ),
  rule(
    saddr('ip6', 'g_staff_v6'),
    daddr('ip6', { prefix: { addr: 'fd00::', len: 64 } }),
    { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'ipv6-icmp' } },
    { accept: null },
  ),
  rule(
    saddr('ip', 'g_guests_v4'),
    daddr('ip', '10.0.5.10'),
    { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } },
    { accept: null },
  ),
  rule(saddr('ip', 'g_guests_v4'), daddr('ip', { prefix: { addr: '10.0.6.0', len: 24 } }), { accept: null }),
  rule(
    saddr('ip', 'g_guests_v4'),
    daddr('ip', { prefix: { addr: '10.0.7.0', len: 24 } }),
    { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } },
    { accept: null },
  ),
  rule({ drop: null }),
];

describe('nft builders', () => {
  it('builds the chain: established first, one rule per allow entry, drop last', () => {
    assert.deepEqual(chainRules(config), expectedRules);
  });

  it('ensure on an empty ruleset: table, sets, chain, rules', () => {
    assert.deepEqual(ensureCommands(config), [
      { add: { table: { family: 'inet', name: 'flexscript' } } },
      { add: { set: { ...ref('g_staff_v4'), type: 'ipv4_addr' } } },
      { add: { set: { ...ref('g_staff_v6'), type: 'ipv6_addr' } } },
      { add: { set: { ...ref('g_guests_v4'), type: 'ipv4_addr' } } },
      { add: { set: { ...ref('g_guests_v6'), type: 'ipv6_addr' } } },
      { add: { chain: { ...ref('forward'), type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } } },
      ...expectedRules,
    ]);
  });

  it('ensure on an existing table: flushes chains, drops stale chains and sets, keeps wanted sets', () => {
    const existing = {
      sets: new Map([
        ['g_staff_v4', ['10.8.0.2']],
        ['g_old_v4', []],
      ]),
      chains: new Map<string, Record<string, unknown>>([
        ['forward', { name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' }],
        ['leftover', { name: 'leftover' }],
      ]),
    };
    const commands = ensureCommands(config, existing);
    assert.deepEqual(commands.slice(0, 6), [
      { add: { table: { family: 'inet', name: 'flexscript' } } },
      { flush: { chain: ref('forward') } },
      { flush: { chain: ref('leftover') } },
      { delete: { chain: ref('leftover') } },
      { delete: { set: ref('g_old_v4') } },
      { add: { set: { ...ref('g_staff_v4'), type: 'ipv4_addr' } } },
    ]);
    assert.ok(!commands.some((c) => 'flush' in c && 'set' in (c.flush as object)), 'elements of wanted sets are kept');
  });

  it('recreates the chain when its hook or policy differ', () => {
    const existing = { sets: new Map(), chains: new Map([['forward', { type: 'filter', hook: 'forward', prio: 0, policy: 'drop' }]]) };
    assert.deepEqual(ensureCommands(config, existing).slice(1, 3), [{ flush: { chain: ref('forward') } }, { delete: { chain: ref('forward') } }]);
  });

  it('set changes: runs of the same kind share a command; a removal is add then delete', () => {
    const ops = [
      { kind: 'add', set: 'g_staff_v4', address: '10.8.0.2' },
      { kind: 'add', set: 'g_staff_v4', address: '10.8.0.3' },
      { kind: 'add', set: 'g_staff_v4', address: '10.8.0.2' },
      { kind: 'remove', set: 'g_staff_v4', address: '10.8.0.9' },
      { kind: 'add', set: 'g_staff_v6', address: 'fd00::2' },
    ] as const;
    assert.deepEqual(setOpCommands('flexscript', ops), [
      { add: { element: { ...ref('g_staff_v4'), elem: ['10.8.0.2', '10.8.0.3'] } } },
      { add: { element: { ...ref('g_staff_v4'), elem: ['10.8.0.9'] } } },
      { delete: { element: { ...ref('g_staff_v4'), elem: ['10.8.0.9'] } } },
      { add: { element: { ...ref('g_staff_v6'), elem: ['fd00::2'] } } },
    ]);
  });

  it('keeps the order of an add and a remove of the same address', () => {
    const ops = [
      { kind: 'remove', set: 's', address: '10.8.0.2' },
      { kind: 'add', set: 's', address: '10.8.0.2' },
    ] as const;
    const kinds = setOpCommands('t', ops).map((c) => Object.keys(c)[0]);
    assert.deepEqual(kinds, ['add', 'delete', 'add']);
  });

  it('replacing sets flushes then adds, in one list', () => {
    assert.deepEqual(
      replaceSetCommands(
        'flexscript',
        new Map([
          ['g_staff_v4', ['10.8.0.2']],
          ['g_staff_v6', []],
        ]),
      ),
      [{ flush: { set: ref('g_staff_v4') } }, { add: { element: { ...ref('g_staff_v4'), elem: ['10.8.0.2'] } } }, { flush: { set: ref('g_staff_v6') } }],
    );
  });

  it('parses a listing of nft 1.0.6 (elements, empty sets, chains)', () => {
    const listing = parseTableListing(
      JSON.stringify({
        nftables: [
          { metainfo: { version: '1.0.6', json_schema_version: 1 } },
          { table: { family: 'inet', name: 'flexscript', handle: 1 } },
          { set: { family: 'inet', name: 'g_staff_v4', table: 'flexscript', type: 'ipv4_addr', handle: 1, elem: ['10.8.0.2', '10.8.0.3'] } },
          { set: { family: 'inet', name: 'g_staff_v6', table: 'flexscript', type: 'ipv6_addr', handle: 2 } },
          { set: { family: 'ip', name: 'other', table: 'flexscript', type: 'ipv4_addr', handle: 2, elem: ['1.1.1.1'] } },
          { chain: { family: 'inet', table: 'flexscript', name: 'forward', handle: 3, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
          { rule: { family: 'inet', table: 'flexscript', chain: 'forward', handle: 4, expr: [] } },
        ],
      }),
      'flexscript',
    );
    assert.deepEqual(
      [...listing.sets],
      [
        ['g_staff_v4', ['10.8.0.2', '10.8.0.3']],
        ['g_staff_v6', []],
      ],
    );
    assert.deepEqual([...listing.chains.keys()], ['forward']);
  });

  it('an interface list becomes an anonymous set', () => {
    const two = parseRootConfig('vpn-interfaces: [tun0, tun1]\nvpn-networks: [10.8.0.0/24]\n', 'root.yaml');
    const [first] = chainRules(two);
    assert.deepEqual((first as { add: { rule: { expr: unknown[] } } }).add.rule.expr[0], {
      match: { op: '==', left: { meta: { key: 'iifname' } }, right: { set: ['tun0', 'tun1'] } },
    });
  });
});

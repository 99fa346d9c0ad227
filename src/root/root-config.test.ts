import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRootConfig, RootConfigError } from './root-config.ts';

function problems(text: string): string[] {
  try {
    parseRootConfig(text, '/etc/flexscript/root.yaml');
  } catch (err) {
    assert.ok(err instanceof RootConfigError);
    assert.equal(err.code, 'FXS_CONFIG_INVALID');
    return err.message.split('\n');
  }
  assert.fail('expected the config to be refused');
}

describe('root config', () => {
  it('parses a full config into typed values', () => {
    const c = parseRootConfig(
      `
table: fxs
vpn-interfaces: [tun0, tun0, tun1]
vpn-networks: [10.8.0.0/24, "fd00:8::/64", 10.8.0.0/24]
groups:
  staff:
    allow:
      - { to: 10.0.0.0/24, protocol: tcp, ports: [22, "8000-8100"] }
      - { to: fd00::/64 }
routes:
  proto: 99
  allowed: [10.9.0.0/16]
  tables: [100, 254]
`,
      'root.yaml',
    );
    assert.equal(c.table, 'fxs');
    assert.deepEqual(c.vpnInterfaces, ['tun0', 'tun1']);
    assert.deepEqual(
      c.vpnNetworks.map((n) => n.text),
      ['10.8.0.0/24', 'fd00:8::/64'],
    );
    const staff = c.groups.get('staff');
    assert.equal(staff?.allow[0]?.to.text, '10.0.0.0/24');
    assert.deepEqual(staff?.allow[0]?.ports, [22, [8000, 8100]]);
    assert.equal(staff?.allow[1]?.protocol, 'any');
    assert.equal(c.routes.proto, 99);
    assert.deepEqual(c.routes.tables, [100, 254]);
  });

  it('has defaults: table flexscript, proto 250, main table, no routes allowed', () => {
    const c = parseRootConfig('vpn-interfaces: [tun0]\nvpn-networks: [10.8.0.0/24]\n', 'root.yaml');
    assert.equal(c.table, 'flexscript');
    assert.deepEqual(c.routes, { proto: 250, allowed: [], tables: [254] });
    assert.equal(c.groups.size, 0);
  });

  it('reports unknown keys with FILE:LINE', () => {
    assert.deepEqual(problems('vpn-interfaces: [tun0]\nrutes: {}\ngroups:\n  staff:\n    alow: []\nvpn-networks: [10.8.0.0/24]\n'), [
      '/etc/flexscript/root.yaml:2: rutes: unknown key',
      '/etc/flexscript/root.yaml:5: groups.staff.alow: unknown key',
    ]);
  });

  it('refuses bad values, each at its line', () => {
    const lines = problems(
      [
        'table: "x; flush ruleset"', // 1
        'vpn-interfaces: ["tun0 eth0"]', // 2
        'groups:', // 3
        '  Staff: {}', // 4
        '  ok:', // 5
        '    allow:', // 6
        '      - { to: 10.0.0.1/24 }', // 7
        '      - { to: 10.0.0.0/24, protocol: icmp, ports: [22] }', // 8
        '      - { to: 0.0.0.0/0 }', // 9
        '      - { to: 10.0.0.0/24, protocol: tcp, ports: ["90-80"] }', // 10
        'routes:', // 11
        '  proto: 2', // 12
        '  allowed: [::/0]', // 13
        'vpn-networks: [10.8.0.0/24]', // 14
      ].join('\n'),
    );
    const at = (n: number) => lines.filter((l) => l.startsWith(`/etc/flexscript/root.yaml:${n}:`));
    for (const n of [1, 2, 4, 7, 8, 9, 10, 12, 13]) assert.equal(at(n).length, 1, `a problem on line ${n}: ${lines.join('\n')}`);
    assert.match(at(7)[0] ?? '', /host bits are set/);
    assert.match(at(8)[0] ?? '', /ports need protocol tcp or udp/);
    assert.match(at(9)[0] ?? '', /\/0/);
  });

  it('refuses a config written before vpn-networks existed, naming file, line and field', () => {
    assert.deepEqual(problems('# old\ntable: fxs\nvpn-interfaces: [tun0]\ngroups: {}\n'), [
      "/etc/flexscript/root.yaml:3: vpn-networks: required: list OpenVPN's client address pools (its `server` and `server-ipv6` networks), e.g. vpn-networks: [10.8.0.0/24]; the root stage acts only on addresses inside them",
    ]);
  });

  it('refuses VPN networks that hold no clients: loopback, multicast, link-local, /0', () => {
    for (const bad of ['127.0.0.0/24', '0.0.0.0/0', '224.0.0.0/24', '::1/128', 'ff02::/16', 'fe80::/64', '0.0.0.0/8', '::ffff:0:0/96', '8.0.0.0/4']) {
      const lines = problems(`vpn-interfaces: [tun0]\nvpn-networks: [10.8.0.0/24, "${bad}"]\n`);
      assert.equal(lines.length, 1, `${bad}: ${lines.join('\n')}`);
      assert.match(lines[0] ?? '', /^\/etc\/flexscript\/root\.yaml:2: vpn-networks\[1\]: /, bad);
    }
    assert.match(problems('vpn-interfaces: [tun0]\nvpn-networks: []\n').join('\n'), /root\.yaml:2: vpn-networks: name at least one VPN network/);
  });

  it('refuses a config without VPN interfaces and YAML errors', () => {
    assert.match(problems('groups: {}\n').join('\n'), /vpn-interfaces/);
    assert.match(problems('vpn-interfaces: [tun0\n').join('\n'), /root\.yaml:\d+: \(top level\): YAML/);
    assert.match(problems('vpn-interfaces: [tun0]\nvpn-interfaces: [tun1]\n').join('\n'), /YAML/);
  });
});

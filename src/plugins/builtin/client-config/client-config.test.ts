import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { z } from 'zod';
import { ConfigError, formatProblem } from '../../../errors.ts';
import { parseConfig } from '../../../config/load-config.ts';
import { offlineServices } from '../../../daemon/services.ts';
import { createLogger } from '../../../logger.ts';
import { loadPlugins } from '../../load-plugins.ts';
import clientConfig, { linesFor } from './index.ts';
import { parseServerConfig } from './openvpn-server-config.ts';

const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const FILE = '/etc/flexscript/flexscript.yaml';

/** The problems `flexscript check` would print for these plugin options (YAML lines under options:). */
async function problems(...options: string[]): Promise<string[]> {
  const yaml = ['instance: t', 'plugins:', '  - use: client-config', '    options:', ...options.map((l) => `      ${l}`)].join('\n');
  const loaded = parseConfig(yaml, FILE);
  try {
    await loadPlugins(loaded, log, offlineServices(loaded.config));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map(formatProblem);
  }
  return [];
}

const parse = (o: unknown) => clientConfig.options!(z).parse(o);
const NET = ['network: 10.8.0.0/24', 'pool: 10.8.0.100-10.8.0.200'];

test('a valid config loads without problems', async () => {
  assert.deepEqual(
    await problems(
      ...NET,
      'groups:',
      '  staff:',
      '    push: ["route 10.20.0.0 255.255.0.0", "dhcp-option DNS 10.20.0.53"]',
      'users:',
      '  alice: { address: 10.8.0.10, groups: [staff], config: ["iroute 192.168.5.0 255.255.255.0"] }',
    ),
    [],
  );
});

test('two users with one address: the second is named with its line', async () => {
  const found = await problems(...NET, 'users:', '  alice: { address: 10.8.0.10 }', '  bob:', '    address: 10.8.0.10');
  assert.deepEqual(found, [`${FILE}:10: plugins[0].options.users.bob.address: 10.8.0.10 is already reserved for alice`]);
});

test("an address inside the dynamic pool, outside the network, or the server's own is refused", async () => {
  const found = await problems(
    ...NET,
    'users:',
    '  a: { address: 10.8.0.150 }',
    '  b: { address: 10.9.0.5 }',
    '  c: { address: 10.8.0.1 }',
    '  d: { address: 10.8.0.300 }',
  );
  assert.equal(found.length, 4, found.join('\n'));
  assert.match(found[0]!, /:8: plugins\[0\]\.options\.users\.a\.address: 10\.8\.0\.150 is inside the dynamic pool 10\.8\.0\.100-10\.8\.0\.200/);
  assert.match(found[1]!, /:9: plugins\[0\]\.options\.users\.b\.address: 10\.9\.0\.5 is outside the VPN network 10\.8\.0\.0\/24/);
  assert.match(found[2]!, /:10: .*users\.c\.address: 10\.8\.0\.1 is the server's address/);
  assert.match(found[3]!, /:11: .*users\.d\.address: .*not an address/);
});

test('without a pool, the pool is what `server` makes: the whole network', async () => {
  const found = await problems('network: 10.8.0.0/24', 'users:', '  a: { address: 10.8.0.10 }');
  assert.match(found[0] ?? '', /:7: .*users\.a\.address: 10\.8\.0\.10 is inside the dynamic pool 10\.8\.0\.2-10\.8\.0\.254; shrink the pool/);
});

test('malformed push and config lines are named by their index', async () => {
  const found = await problems(
    ...NET,
    'groups:',
    '  staff:',
    '    push:',
    '      - "route 10.20.0.0 255.255.0.0"',
    '      - "route 10.20.0.1 255.255.0.0"',
    '      - "dhcp-option DNS not-an-ip"',
    '      - "route 10.1.0.0 255.0.255.0"',
    '      - "ifconfig 10.8.0.5 255.255.255.0"',
    '    config: ["ifconfig-push 10.8.0.9 255.255.255.0", "iroute 10.5.0.1 255.255.0.0", "auth-user-pass-verify /bin/evil via-env", "iroute-ipv6 fd00::1/64"]',
  );
  assert.equal(found.length, 8, found.join('\n'));
  assert.match(found[0]!, /:15: plugins\[0\]\.options\.groups\.staff\.config\[0\]: ifconfig-push is not written by hand/);
  assert.match(found[1]!, /groups\.staff\.config\[1\]: iroute: .*host bits are set/);
  assert.match(found[2]!, /groups\.staff\.config\[2\]: "auth-user-pass-verify" is not allowed in a client config/);
  assert.match(found[3]!, /groups\.staff\.config\[3\]: iroute-ipv6: .*host bits/);
  assert.match(found[4]!, /:11: plugins\[0\]\.options\.groups\.staff\.push\[1\]: route: .*host bits are set/);
  assert.match(found[5]!, /:12: .*push\[2\]: dhcp-option DNS: "not-an-ip" is not an address/);
  assert.match(found[6]!, /:13: .*push\[3\]: route: "255\.0\.255\.0" is not a netmask/);
  assert.match(found[7]!, /:14: .*push\[4\]: do not push ifconfig/);
});

test('a user in an unknown group is named with the group and its line', async () => {
  const found = await problems('groups:', '  staff: {}', 'users:', '  alice:', '    groups: [staff, sales]');
  assert.deepEqual(found, [`${FILE}:9: plugins[0].options.users.alice.groups[1]: unknown group "sales" (groups: staff)`]);
});

test('a static address needs the network; a pool outside it is refused', async () => {
  assert.match((await problems('users:', '  a: { address: 10.8.0.10 }'))[0] ?? '', /users\.a\.address: a static address needs the VPN network/);
  assert.match(
    (await problems('network: 10.8.0.0/24', 'pool: 10.9.0.2-10.9.0.9'))[0] ?? '',
    /:6: plugins\[0\]\.options\.pool: the pool 10\.9\.0\.2-10\.9\.0\.9 is not inside 10\.8\.0\.0\/24/,
  );
  assert.match(
    (await problems('network: 10.8.0.0/24', 'network6: fd00::/64', 'users:', '  a: { address6: "fd01::5" }'))[0] ?? '',
    /users\.a\.address6: fd01::5 is outside the VPN network fd00::\/64/,
  );
});

test('topology subnet pushes address and netmask; net30 a /30 pair, on its /30 grid', async () => {
  const subnet = parse({
    network: '10.8.0.0/23',
    pool: '10.8.1.0-10.8.1.200',
    users: { a: { address: '10.8.0.20', address6: 'fd00::20' } },
    network6: 'fd00::/64',
  });
  assert.deepEqual(subnet.users.get('a')!.lines, ['ifconfig-push 10.8.0.20 255.255.254.0', 'ifconfig-ipv6-push fd00::20/64']);
  const net30 = parse({ network: '10.8.0.0/24', topology: 'net30', pool: '10.8.0.100-10.8.0.251', users: { a: { address: '10.8.0.9' } } });
  assert.deepEqual(net30.users.get('a')!.lines, ['ifconfig-push 10.8.0.9 10.8.0.10']);
  assert.throws(
    () => parse({ network: '10.8.0.0/24', topology: 'net30', pool: '10.8.0.100-10.8.0.251', users: { a: { address: '10.8.0.10' } } }),
    /first host of a \/30 \(10\.8\.0\.9\)/,
  );
  // 10.8.0.97's /30 (96-99) does not touch the pool; 10.8.0.101's does
  assert.throws(
    () =>
      parse({ network: '10.8.0.0/24', topology: 'net30', pool: '10.8.0.100-10.8.0.251', users: { a: { address: '10.8.0.97' }, b: { address: '10.8.0.101' } } }),
    /10\.8\.0\.101 is inside the dynamic pool/,
  );
});

test("a client's lines: its groups' in group order, then its own; none without an entry", () => {
  const lookup = linesFor(
    parse({
      ...{ network: '10.8.0.0/24', pool: '10.8.0.100-10.8.0.200' },
      groups: {
        staff: { members: { patterns: ['*.staff'] }, push: ['route 10.1.0.0 255.255.0.0'] },
        ops: { members: { usernames: ['olga'] }, config: ['iroute 10.9.0.0 255.255.255.0'], push: ['dhcp-option DNS 10.1.0.53'] },
      },
      users: { 'alice.staff': { address: '10.8.0.10', groups: ['ops'], push: ['dhcp-option DOMAIN corp.example'] } },
    }),
  );
  assert.deepEqual(lookup({ commonName: 'alice.staff' }), [
    'push "route 10.1.0.0 255.255.0.0"',
    'iroute 10.9.0.0 255.255.255.0',
    'push "dhcp-option DNS 10.1.0.53"',
    'ifconfig-push 10.8.0.10 255.255.255.0',
    'push "dhcp-option DOMAIN corp.example"',
  ]);
  assert.deepEqual(lookup({ commonName: 'x', username: 'olga' }), ['iroute 10.9.0.0 255.255.255.0', 'push "dhcp-option DNS 10.1.0.53"']);
  assert.equal(lookup({ commonName: 'mallory' }), undefined);
  assert.equal(lookup({ commonName: 'alice.staff.x' }), undefined, 'patterns match the whole name');
});

test("a group's members include the clients in the client groups it lists, compared exactly; with exclusive, they are admitted", async () => {
  const lookup = linesFor(
    parse({
      exclusive: true,
      groups: {
        admins: { members: { groups: ['vpn-admins', 'Domain Admins'] }, push: ['route 10.30.0.0 255.255.0.0'] },
        staff: { members: { patterns: ['*.staff'] }, push: ['route 10.1.0.0 255.255.0.0'] },
      },
    }),
  );
  assert.deepEqual(lookup({ commonName: 'laptop', groups: ['vpn-admins'] }), ['push "route 10.30.0.0 255.255.0.0"']);
  assert.deepEqual(lookup({ commonName: 'a.staff', groups: ['Domain Admins'] }), ['push "route 10.30.0.0 255.255.0.0"', 'push "route 10.1.0.0 255.255.0.0"']);
  for (const near of ['VPN-Admins', 'domain admins', ' vpn-admins', `vpn-admins"; push "route 0.0.0.0 0.0.0.0${'x'.repeat(300)}`])
    assert.equal(lookup({ commonName: 'laptop', groups: [near] }), undefined, near.slice(0, 20));
  // the plugin reads the groups from the session, as they are when it runs
  const plugin = await clientConfig.setup({
    options: parse({ exclusive: true, groups: { admins: { members: { groups: ['vpn-admins'] }, push: ['route 10.30.0.0 255.255.0.0'] } } }),
    log: createLogger('silent'),
  } as never);
  const run = (groups: string[]) => {
    const out: string[] = [];
    const denied: string[] = [];
    plugin['client-connect']!(
      { commonName: 'laptop' } as never,
      { session: { groups }, config: (l: string) => void out.push(l), deny: (r: string) => void denied.push(r) } as never,
    );
    return { out, denied: denied.length };
  };
  assert.deepEqual(run(['vpn-admins']), { out: ['push "route 10.30.0.0 255.255.0.0"'], denied: 0 });
  assert.deepEqual(run(['other']), { out: [], denied: 1 });
});

test('users matched by username when match: username', () => {
  const lookup = linesFor(parse({ match: 'username', users: { kim: { push: ['route 10.3.0.0 255.255.0.0'] } } }));
  assert.deepEqual(lookup({ commonName: 'laptop-1', username: 'kim' }), ['push "route 10.3.0.0 255.255.0.0"']);
  assert.equal(lookup({ commonName: 'kim' }), undefined);
});

test("OpenVPN's server config gives network, pool and topology; server's own pool refuses ifconfig-pool", () => {
  const vpn = parseServerConfig(
    '# comment\ntopology subnet\nserver 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.100 10.8.0.200\nserver-ipv6 fd00:8::/64\n',
    's.conf',
  );
  assert.deepEqual(
    [vpn.network.text, vpn.pool.start.text, vpn.pool.end.text, vpn.topology, vpn.network6?.text],
    ['10.8.0.0/24', '10.8.0.100', '10.8.0.200', 'subnet', 'fd00:8::/64'],
  );
  const net30 = parseServerConfig('server 10.8.0.0 255.255.255.0\n', 's.conf');
  assert.deepEqual([net30.topology, net30.pool.start.text, net30.pool.end.text], ['net30', '10.8.0.4', '10.8.0.251']);
  assert.throws(
    () => parseServerConfig('server 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.100 10.8.0.200\n', 's.conf'),
    /s\.conf:2: OpenVPN refuses ifconfig-pool together with server/,
  );
  assert.throws(() => parseServerConfig('dev tun\n', 's.conf'), /no server directive/);
});

test('openvpn-config is read when the config loads; its problems name the field', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-ccd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'server.conf');
  writeFileSync(conf, 'topology subnet\nserver 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.100 10.8.0.200\n');
  assert.deepEqual(await problems(`openvpn-config: ${conf}`, 'users:', '  a: { address: 10.8.0.10 }'), []);
  assert.match(
    (await problems(`openvpn-config: ${conf}`, 'users:', '  a: { address: 10.8.0.100 }'))[0] ?? '',
    /users\.a\.address: 10\.8\.0\.100 is inside the dynamic pool/,
  );
  assert.match((await problems(`openvpn-config: ${join(dir, 'missing.conf')}`))[0] ?? '', /:5: plugins\[0\]\.options\.openvpn-config: ENOENT/);
  assert.match((await problems('openvpn-config: relative.conf'))[0] ?? '', /openvpn-config: give an absolute path/);
});

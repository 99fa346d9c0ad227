/**
 * OpenVPN's management interface over TCP (`management HOST PORT`) has no owner or mode: every
 * local user can connect, and with `management-client-auth` admit, deny and disconnect clients.
 * OpenVPN asks a password only when the line names a password file. `flexscript check` refuses
 * such a line in OpenVPN's config (in either mode, whoever it is meant for), a listener beyond
 * loopback, and a daemon config that connects over TCP without `password-file`.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runChecks } from '../support/no-units.ts';

function files(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-check-mgmt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'flexscript.yaml');
  const openvpn = join(dir, 'server.conf');
  const password = join(dir, 'mgmt.pw');
  writeFileSync(password, 'secret\n', { mode: 0o600 });
  return { dir, config, openvpn, password };
}

const MGMT_LINES = ['user nobody', 'group nogroup', 'management-client-auth', 'auth-user-pass-optional', 'management-hold'];

test("a TCP management line without a password file is refused, in the daemon config and in OpenVPN's", async (t) => {
  const f = files(t);
  writeFileSync(f.config, ['management:', '  instances:', '    - name: vpn1', '      host: 127.0.0.1', '      port: 7505', ''].join('\n'));
  writeFileSync(f.openvpn, [...MGMT_LINES, 'management 127.0.0.1 7505'].join('\n'));
  const { problems } = await runChecks(f.config, { openvpnConfig: f.openvpn });
  const expected = [
    /^.*flexscript\.yaml:5: management\.instances\[0\]\.port: management over TCP \(127\.0\.0\.1 7505\) without password-file: any local user can connect/,
    /^.*server\.conf:6: management: 127\.0\.0\.1 7505 over TCP without a password file: any local user can connect and admit, deny or disconnect clients; .*add a password file as the third word/,
  ];
  for (const re of expected)
    assert.ok(
      problems.some((p) => re.test(p)),
      `no problem matches ${re}:\n${problems.join('\n')}`,
    );

  // with the password on both sides: clean
  writeFileSync(
    f.config,
    ['management:', '  instances:', '    - name: vpn1', '      host: 127.0.0.1', '      port: 7505', `      password-file: ${f.password}`, ''].join('\n'),
  );
  writeFileSync(f.openvpn, [...MGMT_LINES, `management 127.0.0.1 7505 ${f.password}`].join('\n'));
  assert.deepEqual((await runChecks(f.config, { openvpnConfig: f.openvpn })).problems, []);

  // a password every local user can read protects nothing
  chmodSync(f.password, 0o644);
  const readable = (await runChecks(f.config, { openvpnConfig: f.openvpn })).problems;
  assert.ok(
    readable.some((p) =>
      /flexscript\.yaml:6: management\.instances\[0\]\.password-file: .*mgmt\.pw has mode 0644: every local user can read the management password/.test(p),
    ),
    readable.join('\n'),
  );
});

test('a TCP management line is refused in a hook-mode setup too, and off loopback even with a password', async (t) => {
  const f = files(t);
  const runDir = join(f.dir, 'run');
  writeFileSync(f.config, ['hook:', `  dir: ${runDir}`, '  group: nogroup', ''].join('\n'));
  // a monitoring tool's management interface next to the hooks
  writeFileSync(f.openvpn, ['user nobody', 'group nogroup', 'management 127.0.0.1 7505'].join('\n'));
  let { problems } = await runChecks(f.config, { openvpnConfig: f.openvpn });
  assert.ok(
    problems.some((p) => /server\.conf:3: management: 127\.0\.0\.1 7505 over TCP without a password file/.test(p)),
    problems.join('\n'),
  );

  writeFileSync(f.openvpn, ['user nobody', 'group nogroup', `management 0.0.0.0 7505 ${f.password}`].join('\n'));
  ({ problems } = await runChecks(f.config, { openvpnConfig: f.openvpn }));
  assert.ok(
    problems.some((p) => /server\.conf:3: management: listens on 0\.0\.0\.0 7505, beyond this machine/.test(p)),
    problems.join('\n'),
  );
  assert.ok(!problems.some((p) => /without a password file/.test(p)), 'the password file is there');

  // a unix socket is not TCP
  writeFileSync(f.openvpn, ['user nobody', 'group nogroup', 'management /run/openvpn/x.sock unix'].join('\n'));
  ({ problems } = await runChecks(f.config, { openvpnConfig: f.openvpn }));
  assert.ok(!problems.some((p) => /management:/.test(p)), problems.join('\n'));
});

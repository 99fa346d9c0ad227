/**
 * Whose user is whose in init's setup: one rule per case, each with the message it gives.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accountWarnings, resolveAccounts, sysusersLines } from './init-users.ts';

test("hook mode: the daemon runs as OpenVPN's user and group; nobody:nogroup when none is named", () => {
  assert.deepEqual(resolveAccounts('hook', {}), { openvpn: { user: 'nobody', group: 'nogroup' }, daemon: { user: 'nobody', group: 'nogroup' } });
  const named = resolveAccounts('hook', { openvpnUser: 'openvpn', openvpnGroup: 'vpn' });
  assert.deepEqual(named.daemon, { user: 'openvpn', group: 'vpn' });
  // naming the same account twice is fine
  assert.deepEqual(resolveAccounts('hook', { openvpnUser: 'openvpn', daemonUser: 'openvpn', openvpnGroup: 'vpn', daemonGroup: 'vpn' }), named);
});

test('hook mode refuses a daemon user or group other than OpenVPN', () => {
  assert.throws(
    () => resolveAccounts('hook', { openvpnUser: 'openvpn', daemonUser: 'flexscript' }),
    /^Error: --daemon-user flexscript with --mode hook: in hook mode the daemon runs as OpenVPN's user \(openvpn\), since OpenVPN creates its deferral files readable by that user only; drop --daemon-user, or name OpenVPN's user with --openvpn-user$/,
  );
  assert.throws(
    () => resolveAccounts('hook', { daemonGroup: 'flexscript' }),
    /^Error: --daemon-group flexscript with --mode hook: in hook mode the daemon runs in OpenVPN's group \(nogroup\)/,
  );
});

test('management mode: the daemon has its own user, flexscript, and a group of its name', () => {
  assert.deepEqual(resolveAccounts('management', {}), {
    openvpn: { user: 'nobody', group: 'nogroup' },
    daemon: { user: 'flexscript', group: 'flexscript' },
  });
  assert.deepEqual(resolveAccounts('management', { daemonUser: 'vpnd', daemonGroup: 'vpnadm' }).daemon, { user: 'vpnd', group: 'vpnadm' });
  assert.deepEqual(accountWarnings('management', resolveAccounts('management', {})), []);
});

test("management mode with OpenVPN's user for the daemon works, with a warning; Debian's nobody gets nogroup", () => {
  const shared = resolveAccounts('management', { daemonUser: 'nobody' });
  assert.deepEqual(shared.daemon, { user: 'nobody', group: 'nogroup' });
  const [warning, ...more] = accountWarnings('management', shared);
  assert.deepEqual(more, []);
  assert.match(warning ?? '', /^the daemon runs as OpenVPN's user \(nobody\): OpenVPN, which talks to every client, could then read the daemon's store/);
  assert.deepEqual(accountWarnings('hook', resolveAccounts('hook', {})), [], 'in hook mode sharing is the rule');
});

test('--user and --group are the old names of --openvpn-user and --openvpn-group: either, or both when they agree', () => {
  assert.deepEqual(resolveAccounts('hook', { user: 'openvpn', group: 'vpn' }).openvpn, { user: 'openvpn', group: 'vpn' });
  assert.deepEqual(resolveAccounts('hook', { user: 'openvpn', openvpnUser: 'openvpn' }).openvpn.user, 'openvpn');
  assert.throws(
    () => resolveAccounts('management', { user: 'a', openvpnUser: 'b' }),
    /^Error: --openvpn-user b and --user a name different accounts; --user is the old name of --openvpn-user: give one$/,
  );
  assert.throws(() => resolveAccounts('management', { group: 'a', openvpnGroup: 'b' }), /--openvpn-group b and --group a name different accounts/);
});

test('root is refused for either account: the daemon runs unprivileged and OpenVPN drops root', () => {
  assert.throws(() => resolveAccounts('hook', { openvpnUser: 'root' }), /^Error: --openvpn-user root: the daemon runs unprivileged/);
  assert.throws(() => resolveAccounts('management', { openvpnUser: 'root' }), /--openvpn-user root: .*OpenVPN drops root after start-up/);
  assert.throws(() => resolveAccounts('management', { daemonUser: 'root' }), /^Error: --daemon-user root: the daemon runs unprivileged/);
});

test('names go into sudoers, units and OpenVPN lines: anything but a plain name is refused', () => {
  for (const bad of ['ALL', 'a b', 'nobody\nuser root', '%wheel', '#0', '', 'x'.repeat(33)]) {
    for (const flag of ['openvpnUser', 'openvpnGroup', 'daemonUser', 'daemonGroup'] as const) {
      assert.throws(() => resolveAccounts('management', { [flag]: bad }), /: not a plain user or group name/, `${flag} ${JSON.stringify(bad)}`);
    }
  }
});

test("sysusers.d lines create the daemon's user (and a group of another name) unless Debian has them", () => {
  assert.deepEqual(sysusersLines({ user: 'flexscript', group: 'flexscript' }), ['u flexscript - "openvpn-flexscript daemon" / -']);
  assert.deepEqual(sysusersLines({ user: 'vpnd', group: 'vpnadm' }), ['g vpnadm -', 'u vpnd -:vpnadm "openvpn-flexscript daemon" / -']);
  assert.deepEqual(sysusersLines({ user: 'nobody', group: 'nogroup' }), []);
});

/**
 * The ldap-auth plugin through real OpenVPN and a real OpenLDAP server (src/lab/slapd.ts), in
 * management mode and hook mode: a user with the right password and the required group gets in
 * with its directory groups (nested included); a wrong password, a disabled account, a missing
 * group and the directory down get AUTH_FAILED with a clear reason in the log, and no session.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { runChecks } from '../../src/cli/check.ts';
import { ownedDir, readJsonLines, REPO } from '../../src/lab/daemon-process.ts';
import { LDAP_USERS, startSlapd } from '../../src/lab/slapd.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { MODES, modeLab, type Mode } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const haveSlapd = existsSync('/usr/sbin/slapd');
const GROUPS_RECORDER = join(REPO, 'test/fixtures/plugins/groups-recorder.ts');

async function ldapLab(t: TestContext, mode: Mode) {
  const slapd = await startSlapd(t);
  // the groups the verifying plugin gave each client, as the pipeline decided them
  const groupsFile = join(ownedDir(join(slapd.dir, 'groups')), 'groups.jsonl');
  const h = await modeLab(t, mode, {
    passwords: true,
    events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
    pluginTimeout: '10s',
    plugins: [
      '  - use: ldap-auth',
      '    options:',
      `      url: ${slapd.url}`,
      '      start-tls: true',
      `      ca: ${slapd.ca}`,
      `      service: { dn: "${slapd.serviceDn}", password-file: ${slapd.servicePasswordFile} }`,
      '      users:',
      `        base: "ou=people,${slapd.base}"`,
      '        filter: "(&(objectClass=inetOrgPerson)(uid={user}))"',
      '        disabled-filter: "(employeeType=disabled)"',
      `      groups: { nested: search, base: "ou=groups,${slapd.base}" }`,
      '      required-groups: [vpn-users]',
      '      cache: { ttl: 0 }',
    ],
    pluginsAfter: [`  - path: ${GROUPS_RECORDER}`, '    options:', `      file: ${groupsFile}`],
  });
  return { h, slapd, groupsFile };
}

for (const mode of MODES) {
  describe(`ldap-auth, ${mode} mode`, { skip: !isRoot ? 'needs root' : haveSlapd ? false : 'slapd is not installed' }, () => {
    test('admitted with nested directory groups; wrong password, disabled, missing group, directory down → AUTH_FAILED, no session', async (t) => {
      const { h, slapd, groupsFile } = await ldapLab(t, mode);
      const login = (commonName: string, username: string, password: string) => h.lab.startClient({ commonName, port: h.port, username, password });
      const denial = (commonName: string) =>
        waitFor(`the denial of ${commonName}`, () =>
          h.daemon
            .events()
            .flatMap((e) =>
              e.channel === 'decision' && e.data.event === 'user-pass-verify' && e.data.verdict === 'deny' && e.data.commonName === commonName
                ? [String(e.data.reason)]
                : [],
            )
            .at(0),
        );

      const alice = await login('c-alice', 'alice', LDAP_USERS.alice);
      await alice.waitConnected();
      const decided = await waitFor('alice decided', () => readJsonLines(groupsFile).find((r) => r.event === 'decided' && r.commonName === 'c-alice'));
      assert.equal(decided.verdict, 'accept');
      assert.deepEqual([...(decided.groups as string[])].sort(), ['admins', 'loop-a', 'loop-b', 'ops-team', 'vpn-users']);
      const connect = await waitFor('alice connect', () => h.recordsOf('client-connect').find((r) => r.commonName === 'c-alice'));
      assert.ok(connect);

      const refused = await Promise.all([
        login('c-wrong', 'alice', 'Not-Her-Pa55'),
        login('c-dave', 'dave', LDAP_USERS.dave),
        login('c-bob', 'bob', LDAP_USERS.bob),
      ]);
      await Promise.all(refused.map((c) => c.waitAuthFailed()));
      assert.equal(await denial('c-wrong'), 'wrong password');
      assert.equal(await denial('c-dave'), 'account disabled (matches disabled-filter)');
      assert.match(await denial('c-bob'), /^user is in none of the required groups \(vpn-users\)/);
      if (h.caps.denyReason) assert.match(refused[0]!.log(), /AUTH_FAILED,authentication failed/, 'the client gets only the generic reason');

      await slapd.stop();
      const carol = await login('c-carol', 'carol', LDAP_USERS.carol);
      await carol.waitAuthFailed();
      assert.match(await denial('c-carol'), /^directory unreachable: /);

      // none of the refused clients became a session
      const sessions = h.recordsOf('client-connect').map((r) => r.commonName);
      assert.deepEqual(sessions, ['c-alice']);
    });
  });
}

describe('flexscript check with ldap-auth', { skip: haveSlapd ? false : 'slapd is not installed' }, () => {
  test('binds with the service account and reports what it found; with the directory down it says why', async (t) => {
    const slapd = await startSlapd(t);
    const config = join(slapd.dir, 'flexscript.yaml');
    writeFileSync(
      config,
      [
        'instance: e2e',
        'management:',
        '  instances:',
        `    - { name: e2e, socket: ${join(slapd.dir, 'mgmt.sock')} }`,
        'plugins:',
        '  - use: ldap-auth',
        '    options:',
        `      url: ${slapd.ldapsUrl}`,
        `      ca: ${slapd.ca}`,
        `      service: { dn: "${slapd.serviceDn}", password-file: ${slapd.servicePasswordFile} }`,
        `      users: { base: "ou=people,${slapd.base}", filter: "(uid={user})" }`,
        `      groups: { nested: search, base: "ou=groups,${slapd.base}" }`,
        '',
      ].join('\n'),
    );
    const up = await runChecks(config);
    assert.deepEqual(
      up.found,
      [
        `ldap-auth: server ${slapd.ldapsUrl}; TLS LDAPS; bind service account ${slapd.serviceDn}; 7 user entries under ou=people,${slapd.base}; 5 groups under ou=groups,${slapd.base}`,
      ],
      up.problems.join('\n'),
    );
    assert.ok(!up.problems.some((p) => p.includes('ldap-auth')), up.problems.join('\n'));
    await slapd.stop();
    const down = await runChecks(config);
    assert.ok(
      down.problems.some((p) => new RegExp(`plugin ldap-auth: cannot reach the directory at ${slapd.ldapsUrl}: `).test(p)),
      down.problems.join('\n'),
    );
  });
});

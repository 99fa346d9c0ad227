/**
 * The ldap-auth plugin through real OpenVPN and a real OpenLDAP server (src/lab/slapd.ts), in
 * management mode and hook mode: a user with the right password and the required group gets in
 * with its directory groups (nested included); a wrong password, a disabled account, a missing
 * group and the directory down get AUTH_FAILED with a clear reason in the log, and no session.
 * A directory group mapped to `vpn-admins` drives client-config's push and the firewall set
 * (OpenVPN, slapd and the daemon in a network namespace, the root stage through sudo). Followed
 * by totp, a login needs the password and an unused code from the user's authenticator.
 */
import assert from 'node:assert/strict';
import { chownSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { TOTP } from 'otpauth';
import { runChecks } from '../../src/cli/check.ts';
import { decisionOf, ownedDir, readJsonLines, REPO, RUN_AS } from '../../src/lab/daemon-process.ts';
import { LDAP_USERS, startSlapd, type Slapd } from '../../src/lab/slapd.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { ADMIN_PLUGINS, ADMIN_ROUTE, netnsLab, pushedAddress, setsBecome } from '../support/netns-lab.ts';
import { MODES, modeLab, type Mode } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const haveSlapd = existsSync('/usr/sbin/slapd');
const GROUPS_RECORDER = join(REPO, 'test/fixtures/plugins/groups-recorder.ts');
const skip = !isRoot ? 'needs root' : haveSlapd ? false : 'slapd is not installed';

/** The ldap-auth entry: search with the service account, then bind; StartTLS; nested groups by search. */
function ldapAuthPlugin(slapd: Slapd, o: { readonly requiredGroups?: string; readonly map?: string } = { requiredGroups: 'vpn-users' }): string[] {
  return [
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
    `      groups: { nested: search, base: "ou=groups,${slapd.base}"${o.map ? `, map: { ${o.map} }` : ''} }`,
    ...(o.requiredGroups ? [`      required-groups: [${o.requiredGroups}]`] : []),
    '      cache: { ttl: 0 }',
  ];
}

const USER_PASS_EVENTS = ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'] as const;

async function ldapLab(t: TestContext, mode: Mode) {
  const slapd = await startSlapd(t);
  const metricsPort = await freeLoopbackPort();
  // the groups the verifying plugin gave each client, as the pipeline decided them
  const groupsFile = join(ownedDir(join(slapd.dir, 'groups')), 'groups.jsonl');
  const h = await modeLab(t, mode, {
    passwords: true,
    events: [...USER_PASS_EVENTS],
    pluginTimeout: '10s',
    plugins: ldapAuthPlugin(slapd),
    pluginsAfter: [`  - path: ${GROUPS_RECORDER}`, '    options:', `      file: ${groupsFile}`],
    extraConfig: ['metrics:', '  host: 127.0.0.1', `  port: ${metricsPort}`],
  });
  return { h, slapd, groupsFile, metricsPort };
}

for (const mode of MODES) {
  describe(`ldap-auth, ${mode} mode`, { skip }, () => {
    test('admitted with nested directory groups; wrong password, disabled, missing group, directory down → AUTH_FAILED, no session', async (t) => {
      const { h, slapd, groupsFile, metricsPort } = await ldapLab(t, mode);
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
      // the outage is counted where an operator's alert can see it
      const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(scraped, /^flexscript_plugin_events_total\{plugin="ldap-auth",name="directory_unreachable"\} [1-9]\d*$/m);

      // none of the refused clients became a session
      const sessions = h.recordsOf('client-connect').map((r) => r.commonName);
      assert.deepEqual(sessions, ['c-alice']);
    });
  });
}

for (const mode of MODES) {
  describe(`ldap-auth with the plugins after it (groups, totp), ${mode} mode`, { skip }, () => {
    test("a user in a nested directory group mapped to vpn-admins gets that group's push and joins the firewall set mapped from it; a user outside gets neither", async (t) => {
      const n = await netnsLab(t, mode, {
        passwords: true,
        events: [...USER_PASS_EVENTS],
        pluginTimeout: '10s',
        // the daemon reaches the directory on the namespace's loopback
        inNamespace: async (netns) => {
          const slapd = await startSlapd(t, { netns });
          return {
            plugins: [
              // alice is in vpn-users through ops-team; bob is in no group
              ...ldapAuthPlugin(slapd, { map: 'vpn-users: vpn-admins' }),
              ...ADMIN_PLUGINS,
            ],
          };
        },
      });
      const start = async (commonName: string, username: string, password: string) => {
        const client = await n.h.lab.startClient({ commonName, port: n.h.port, username, password, extraConfig: ['explicit-exit-notify 1'] });
        await client.waitConnected();
        return { client, address: pushedAddress(client.pushReply()) };
      };
      const alice = await start('c-alice', 'alice', LDAP_USERS.alice);
      const bob = await start('c-bob', 'bob', LDAP_USERS.bob);
      assert.match(alice.client.pushReply() ?? '', ADMIN_ROUTE, "alice got vpn-admins' route");
      assert.doesNotMatch(bob.client.pushReply() ?? '', ADMIN_ROUTE, 'bob did not');
      const groupsOf = async (commonName: string) =>
        (await n.h.daemon.waitForEvent(`client-connect of ${commonName}`, decisionOf({ event: 'client-connect', verdict: 'accept', commonName }))).data
          .groups ?? [];
      assert.ok((await groupsOf('c-alice')).includes('vpn-admins'), 'alice is in vpn-admins');
      assert.deepEqual(await groupsOf('c-bob'), []);

      await setsBecome(n, { staff: [alice.address], guests: [bob.address] }, "alice's address in staff (mapped from vpn-admins), bob's in guests");
      await alice.client.stop();
      await waitFor('alice left staff', async () => (await n.setElements('staff')).length === 0, { timeoutMs: 60_000, intervalMs: 200 });
    });

    test('ldap-auth then totp (static challenge): the password and a fresh code get in; a wrong code, a code used before and a wrong password are refused with the reason, and no session is recorded', async (t) => {
      const slapd = await startSlapd(t);
      const secret = { alice: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', carol: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' };
      // only root and the daemon's group may read the secrets
      const secrets = join(slapd.dir, 'totp-secrets');
      writeFileSync(secrets, `alice:${secret.alice}\ncarol:${secret.carol}\n`, { mode: 0o640 });
      chownSync(secrets, 0, RUN_AS.gid);
      const h = await modeLab(t, mode, {
        passwords: true,
        events: [...USER_PASS_EVENTS],
        pluginTimeout: '10s',
        plugins: [...ldapAuthPlugin(slapd), '  - use: totp', '    options:', `      file: ${secrets}`, '      mode: static'],
      });
      const codeOf = (user: keyof typeof secret) => new TOTP({ secret: secret[user], algorithm: 'SHA1', digits: 6, period: 30 }).generate();
      // as a VPN GUI answers: the password with the code (`SCRV1:...`), over the client's management interface
      const login = (commonName: string, username: keyof typeof secret, password: string, code: () => string) =>
        h.lab.startClient({
          commonName,
          port: h.port,
          answers: { username, password, respond: code },
          extraConfig: ['static-challenge "Authenticator code" 1'],
        });
      const denial = async (commonName: string) =>
        String(
          (
            await h.daemon.waitForEvent(
              `user-pass-verify deny of ${commonName}`,
              decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName }),
              60_000,
            )
          ).data.reason,
        );

      const right = codeOf('alice');
      const alice = await login('c-alice', 'alice', LDAP_USERS.alice, () => right);
      await alice.waitConnected();
      assert.deepEqual(alice.questions, [{ kind: 'static', text: 'Authenticator code' }]);

      const wrongCode = (c: string) => (c === '000000' ? '111111' : '000000');
      const [replayed, wrong, wrongPassword] = await Promise.all([
        login('c-replay', 'alice', LDAP_USERS.alice, () => right),
        login('c-wrong-code', 'carol', LDAP_USERS.carol, () => wrongCode(codeOf('carol'))),
        login('c-wrong-password', 'carol', 'Not-Her-Pa55', () => codeOf('carol')),
      ]);
      await Promise.all([replayed, wrong, wrongPassword].map((c) => c.waitAuthFailed()));
      assert.equal(await denial('c-replay'), 'TOTP: code already used');
      assert.equal(await denial('c-wrong-code'), 'TOTP: wrong code');
      // the password is checked first: totp does not run for a client the directory refused
      assert.equal(await denial('c-wrong-password'), 'wrong password');
      await waitFor('the connect of c-alice recorded', () => h.recordsOf('client-connect').some((r) => r.commonName === 'c-alice'));
      assert.deepEqual(
        h.recordsOf('client-connect').map((r) => r.commonName),
        ['c-alice'],
        'no session for a refused client',
      );
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

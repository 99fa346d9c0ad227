/**
 * ldap-auth against a real Active Directory: a Samba AD domain controller (src/lab/samba-ad.ts),
 * provisioned once for this file, with users in `OU=Staff` and the nested groups
 * VPN Users ⊃ VPN Admins ⊃ Ops Team ∋ alice. What slapd cannot show is shown here: the in-chain
 * matching rule (`nested: ad-in-chain`, from `OU=Groups` and from the domain root, whose search
 * also brings a referral), logins by sAMAccountName and by userPrincipalName, a bind as the user
 * with a userPrincipalName, `userAccountControl` and AD's bind sub-codes for a disabled account,
 * AD's refusal of simple binds without TLS, and `flexscript check`. Then end to end through real
 * OpenVPN in both modes (OpenVPN, the domain controller and the daemon in a network namespace,
 * the root stage through sudo): alice, two levels down, gets VPN Admins' push and joins the
 * firewall set mapped from it; carol, in VPN Users only, gets in without either; bob (in no
 * group) and dave (disabled) are refused with the reason, and neither becomes a session.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { z } from 'zod';
import { runChecks } from '../../src/cli/check.ts';
import { decisionOf } from '../../src/lab/daemon-process.ts';
import { AD_USERS, provisionSambaAd, SAMBA, type SambaAd } from '../../src/lab/samba-ad.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { createLogger } from '../../src/logger.ts';
import type { Services } from '../../src/plugins/plugin-api.ts';
import { fakeAuthContext, hookUserPassVerify } from '../support/fake-auth-context.ts';
import ldapAuth from '../../src/plugins/builtin/ldap-auth/index.ts';
import { ADMIN_PLUGINS, ADMIN_ROUTE, netnsLab, pushedAddress, setsBecome } from '../support/netns-lab.ts';
import { MODES } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? 'needs root (samba-tool and samba run as root)'
  : existsSync(SAMBA)
    ? false
    : 'samba is not installed (apt-get install samba samba-ad-dc)';

/** A person's account, by sAMAccountName or userPrincipalName. */
const AD_USERS_FILTER = '(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={user})(userPrincipalName={user})))';

/** The plugin as an operator sets it up for AD (docs/ldap-auth.md): a service account over LDAPS, nested groups by the in-chain rule. */
function adOptions(ad: SambaAd, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    url,
    ca: ad.ca,
    service: { dn: ad.serviceDn, 'password-file': ad.servicePasswordFile },
    users: { base: ad.staff, filter: AD_USERS_FILTER },
    'active-directory': true,
    groups: { nested: 'ad-in-chain', base: ad.groups, map: { 'VPN Users': 'vpn-users', 'VPN Admins': 'vpn-admins' } },
    cache: { ttl: 0 },
    limits: { user: { failures: 100 }, address: { failures: 100 } },
    ...extra,
  };
}

/** The plugin alone, called as the pipeline calls it. */
async function plugin(t: TestContext, options: Record<string, unknown>) {
  const log = createLogger('silent');
  const instance = await ldapAuth.setup({
    options: ldapAuth.options!(z).parse(options),
    log,
    instance: 'test',
    configDir: '/',
    signal: new AbortController().signal,
    services: { sessions: { list: () => [] }, kill: async () => undefined } as Services,
  });
  t.after(() => instance.close?.());
  const login = async (username: string, password: string) => {
    const { ctx, out } = fakeAuthContext({ log });
    await instance['user-pass-verify']!(hookUserPassVerify(username, password), ctx);
    return out.denied === undefined ? { groups: out.groups.sort() } : { denied: out.denied.reason };
  };
  return { instance, login };
}

const ALICE_GROUPS = ['Ops Team', 'vpn-admins', 'vpn-users'];

describe('ldap-auth against Active Directory (Samba AD DC)', { skip }, () => {
  let ad: SambaAd;
  const cleanups: (() => unknown)[] = [];
  // provisioning takes half a minute or more: once for the file
  before(async () => {
    ad = await provisionSambaAd({ after: (fn) => cleanups.push(fn) });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const serve = async (t: TestContext) => {
    const server = await ad.start();
    t.after(() => server.stop());
    return server;
  };

  test('search then bind over LDAPS: sAMAccountName or userPrincipalName; nested groups by the in-chain rule, from OU=Groups or the domain root; disabled, wrong, unknown and wildcard names refused', async (t) => {
    const server = await serve(t);
    const { login } = await plugin(t, adOptions(ad, server.ldapsUrl));
    // alice is in Ops Team, which is in VPN Admins, which is in VPN Users: AD follows every level
    assert.deepEqual(await login('alice', AD_USERS.alice), { groups: ALICE_GROUPS });
    assert.deepEqual(await login(`alice@${ad.realm}`, AD_USERS.alice), { groups: ALICE_GROUPS }, 'by userPrincipalName');
    assert.deepEqual(await login('carol', AD_USERS.carol), { groups: ['vpn-users'] });
    assert.deepEqual(await login('bob', AD_USERS.bob), { groups: [] });
    assert.deepEqual(await login('dave', AD_USERS.dave), { denied: 'account disabled (userAccountControl)' });
    assert.deepEqual(await login('alice', 'Not-Her-Pa55'), { denied: 'wrong password' });
    for (const name of ['zed', '*', 'al*', '*)(sAMAccountName=*', `*@${ad.realm}`])
      assert.match((await login(name, AD_USERS.alice)).denied ?? '', /^unknown user/, `username ${JSON.stringify(name)}`);

    // from the domain root AD also answers with a referral (CN=Configuration), which is not followed
    const root = await plugin(
      t,
      adOptions(ad, server.ldapsUrl, { groups: { nested: 'ad-in-chain', base: ad.base, map: { 'VPN Users': 'vpn-users', 'VPN Admins': 'vpn-admins' } } }),
    );
    assert.deepEqual(await root.login('alice', AD_USERS.alice), { groups: ALICE_GROUPS });
    // memberOf followed upwards gives the same groups
    const memberOf = await plugin(
      t,
      adOptions(ad, server.ldapsUrl, { groups: { nested: 'member-of', map: { 'VPN Users': 'vpn-users', 'VPN Admins': 'vpn-admins' } } }),
    );
    assert.deepEqual(await memberOf.login('alice', AD_USERS.alice), { groups: ALICE_GROUPS });
  });

  test("bind as the user with a userPrincipalName over StartTLS: required groups; AD's bind sub-code names a disabled account; a username that would make another bind name is refused before any bind", async (t) => {
    const server = await serve(t);
    const { login } = await plugin(t, {
      url: server.url,
      'start-tls': true,
      ca: ad.ca,
      'user-dn': `{user}@${ad.realm}`,
      users: { base: ad.staff, filter: `(userPrincipalName={user}@${ad.realm})` },
      groups: { nested: 'ad-in-chain', base: ad.groups, map: { 'VPN Users': 'vpn-users', 'VPN Admins': 'vpn-admins' } },
      'required-groups': ['vpn-users'],
      cache: { ttl: 0 },
      limits: { user: { failures: 100 }, address: { failures: 100 } },
    });
    assert.deepEqual(await login('alice', AD_USERS.alice), { groups: ALICE_GROUPS });
    assert.deepEqual(await login('carol', AD_USERS.carol), { groups: ['vpn-users'] });
    assert.match((await login('bob', AD_USERS.bob)).denied ?? '', /^user is in none of the required groups \(vpn-users\)/);
    // without `active-directory: true` nothing reads userAccountControl: AD's answer to the bind says it
    assert.equal((await login('dave', AD_USERS.dave)).denied, 'account disabled (Active Directory refused the bind: data 533)');
    assert.equal((await login('alice', 'Not-Her-Pa55')).denied, 'wrong password or unknown user (bind refused)');
    assert.equal((await login('zed', 'Zed-Pa55')).denied, 'wrong password or unknown user (bind refused)');
    // a name that would make another bind name is refused before any bind
    for (const name of [`bob@${ad.realm}`, 'EXAMPLE\\bob', `CN=bob,${ad.staff}`])
      assert.match((await login(name, AD_USERS.bob)).denied ?? '', /^unknown user \(a character no Active Directory account name holds\)/, name);
  });

  test('a simple bind without TLS: AD refuses it, and the login is denied as a directory fault that says what to change', async (t) => {
    const server = await serve(t);
    const { instance, login } = await plugin(t, adOptions(ad, server.url));
    assert.match(
      (await login('carol', AD_USERS.carol)).denied ?? '',
      /^directory unreachable: the directory takes no simple bind without TLS \(.+\): use ldaps:\/\/ or start-tls: true$/,
    );
    assert.deepEqual(instance.counters?.(), { directory_unreachable: 1 });
    const checked = await instance.check!();
    assert.equal(checked.ok, false);
    assert.match(checked.message, /the directory takes no simple bind without TLS/);
  });

  test('flexscript check binds with the service account and reports what it found in the domain', async (t) => {
    const server = await serve(t);
    const config = join(ad.dir, 'flexscript.yaml');
    writeFileSync(
      config,
      [
        'instance: e2e',
        'management:',
        '  instances:',
        `    - { name: e2e, socket: ${join(ad.dir, 'mgmt.sock')} }`,
        'plugins:',
        '  - use: ldap-auth',
        '    timeout: 10s',
        '    options:',
        `      url: ${server.ldapsUrl}`,
        `      ca: ${ad.ca}`,
        `      service: { dn: "${ad.serviceDn}", password-file: ${ad.servicePasswordFile} }`,
        `      users: { base: "${ad.staff}", filter: "(&(objectCategory=person)(objectClass=user)(sAMAccountName={user}))" }`,
        '      active-directory: true',
        `      groups: { nested: ad-in-chain, base: "${ad.groups}" }`,
        '',
      ].join('\n'),
    );
    const up = await runChecks(config);
    assert.deepEqual(
      up.found,
      [`ldap-auth: server ${server.ldapsUrl}; TLS LDAPS; bind service account ${ad.serviceDn}; 4 user entries under ${ad.staff}; 3 groups under ${ad.groups}`],
      up.problems.join('\n'),
    );
    assert.ok(!up.problems.some((p) => p.includes('ldap-auth')), up.problems.join('\n'));
    await server.stop();
    const down = await runChecks(config);
    assert.ok(
      down.problems.some((p) => p.includes(`plugin ldap-auth: cannot reach the directory at ${server.ldapsUrl}: `)),
      down.problems.join('\n'),
    );
  });

  for (const mode of MODES) {
    test(`through real OpenVPN, ${mode} mode: a user two nested groups down gets the outer group's push and firewall set; a user in no group and a disabled one are refused, with no session`, async (t) => {
      const n = await netnsLab(t, mode, {
        passwords: true,
        events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
        pluginTimeout: '10s',
        // the daemon reaches the domain controller on the namespace's loopback
        inNamespace: async (netns) => {
          const server = await ad.start({ netns });
          t.after(() => server.stop());
          return {
            plugins: [
              '  - use: ldap-auth',
              '    options:',
              `      url: ${server.ldapsUrl}`,
              `      ca: ${ad.ca}`,
              `      service: { dn: "${ad.serviceDn}", password-file: ${ad.servicePasswordFile} }`,
              `      users: { base: "${ad.staff}", filter: "${AD_USERS_FILTER}" }`,
              '      active-directory: true',
              `      groups: { nested: ad-in-chain, base: "${ad.groups}", map: { "VPN Users": vpn-users, "VPN Admins": vpn-admins } }`,
              '      required-groups: [vpn-users]',
              '      cache: { ttl: 0 }',
              ...ADMIN_PLUGINS,
            ],
          };
        },
      });
      const h = n.h;
      const start = (commonName: string, username: keyof typeof AD_USERS) =>
        h.lab.startClient({ commonName, port: h.port, username, password: AD_USERS[username], extraConfig: ['explicit-exit-notify 1'] });
      const [alice, carol, bob, dave] = await Promise.all([
        start('c-alice', 'alice'),
        start('c-carol', 'carol'),
        start('c-bob', 'bob'),
        start('c-dave', 'dave'),
      ]);
      await Promise.all([alice.waitConnected(), carol.waitConnected(), bob.waitAuthFailed(), dave.waitAuthFailed()]);

      const denial = async (commonName: string) =>
        String(
          (await h.daemon.waitForEvent(`the denial of ${commonName}`, decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName }), 60_000)).data
            .reason,
        );
      assert.match(await denial('c-bob'), /^user is in none of the required groups \(vpn-users\)/);
      assert.equal(await denial('c-dave'), 'account disabled (userAccountControl)');
      if (h.caps.denyReason) assert.match(bob.log(), /AUTH_FAILED,authentication failed/, 'the client gets only the generic reason');

      assert.match(alice.pushReply() ?? '', ADMIN_ROUTE, "alice got vpn-admins' route");
      assert.doesNotMatch(carol.pushReply() ?? '', ADMIN_ROUTE, 'carol did not');
      const groupsOf = async (commonName: string) =>
        [
          ...((await h.daemon.waitForEvent(`client-connect of ${commonName}`, decisionOf({ event: 'client-connect', verdict: 'accept', commonName }), 60_000))
            .data.groups ?? []),
        ].sort();
      assert.deepEqual(await groupsOf('c-alice'), ALICE_GROUPS);
      assert.deepEqual(await groupsOf('c-carol'), ['vpn-users']);

      await setsBecome(
        n,
        { staff: [pushedAddress(alice.pushReply())], guests: [pushedAddress(carol.pushReply())] },
        "alice's address in staff (mapped from VPN Admins), carol's in guests",
      );
      await waitFor('the connects recorded', () => h.recordsOf('client-connect').length >= 2);
      assert.deepEqual(
        h
          .recordsOf('client-connect')
          .map((r) => r.commonName)
          .sort(),
        ['c-alice', 'c-carol'],
        'no session for a refused client',
      );
    });
  }
});

/**
 * ldap-auth against a real OpenLDAP server (src/lab/slapd.ts): both ways to find a user, nested
 * groups by every lookup slapd can do, wrong passwords, unknown and disabled users, required
 * groups, hostile usernames, the directory going down, StartTLS and LDAPS with a pinned CA.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { z } from 'zod';
import { LDAP_USERS, type Slapd, startSlapd } from '../../../lab/slapd.ts';
import { createLogger } from '../../../logger.ts';
import type { PluginInstance, Services } from '../../plugin-api.ts';
import { fakeAuthContext, hookUserPassVerify } from '../../../../test/support/fake-auth-context.ts';
import ldapAuth from './index.ts';

const haveSlapd = existsSync('/usr/sbin/slapd');

async function plugin(t: TestContext, options: Record<string, unknown>) {
  const parsed = ldapAuth.options!(z).parse(options);
  const log = createLogger('silent');
  const instance: PluginInstance = await ldapAuth.setup({
    options: parsed,
    log,
    instance: 'test',
    configDir: '/',
    signal: new AbortController().signal,
    services: { sessions: { list: () => [] }, kill: async () => undefined } as Services,
  });
  t.after(() => instance.close?.());
  const login = async (username: string, password: string, realAddress = '198.51.100.7') => {
    const { ctx, out } = fakeAuthContext({ log });
    await instance['user-pass-verify']!(hookUserPassVerify(username, password, realAddress), ctx);
    return out.denied ? { denied: out.denied } : { groups: out.groups.sort() };
  };
  return { instance, login };
}

const searchThenBind = (s: Slapd, extra: Record<string, unknown> = {}) => ({
  url: s.url,
  'start-tls': true,
  ca: s.ca,
  service: { dn: s.serviceDn, 'password-file': s.servicePasswordFile },
  users: { base: `ou=people,${s.base}`, filter: '(&(objectClass=inetOrgPerson)(uid={user}))', 'disabled-filter': '(employeeType=disabled)' },
  groups: { nested: 'search', base: `ou=groups,${s.base}` },
  cache: { ttl: 0 },
  ...extra,
});

describe('ldap-auth against slapd', { skip: haveSlapd ? false : 'slapd is not installed (apt-get install slapd)' }, () => {
  test('search then bind: right password → accepted with nested groups; wrong, unknown, disabled, empty → denied', async (t) => {
    const s = await startSlapd(t);
    const { login } = await plugin(t, searchThenBind(s, { 'attribute-groups': [{ attribute: 'departmentNumber', value: 'Ops', group: 'ops' }] }));
    // alice: ops-team ⊂ vpn-users (nested), admins (uniqueMember), loop-a ⇄ loop-b (a cycle)
    assert.deepEqual(await login('alice', LDAP_USERS.alice), { groups: ['admins', 'loop-a', 'loop-b', 'ops', 'ops-team', 'vpn-users'] });
    assert.deepEqual(await login('carol', LDAP_USERS.carol), { groups: ['vpn-users'] });
    assert.deepEqual(await login('bob', LDAP_USERS.bob), { groups: [] });
    const denied = async (u: string, p: string) => (await login(u, p)).denied;
    assert.deepEqual(await denied('alice', 'wrong'), { reason: 'wrong password', clientReason: 'authentication failed' });
    assert.match((await denied('zed', 'x'))!.reason, /^unknown user/);
    assert.equal((await denied('dave', LDAP_USERS.dave))!.reason, 'account disabled (matches disabled-filter)');
    assert.match((await denied('alice', ''))!.reason, /^empty password/);
  });

  test('hostile usernames are one literal value: no wildcard, no injected filter, no other entry', async (t) => {
    const s = await startSlapd(t);
    const { login } = await plugin(t, searchThenBind(s, { limits: { user: { failures: 100 }, address: { failures: 100 } } }));
    // with any password, none of these finds an entry (unescaped, `*` would match every user)
    for (const name of ['*', 'al*', ')(uid=*', '*)(|(uid=*', 'alice)(uid=bob', 'alice\\', 'alice\0', `${'a'.repeat(256)}`, 'Zoë 雪']) {
      const r = await login(name, LDAP_USERS.alice);
      assert.match(r.denied?.reason ?? '', /^unknown user/, `username ${JSON.stringify(name)}: ${JSON.stringify(r)}`);
    }
    assert.match((await login('a'.repeat(257), 'x')).denied?.reason ?? '', /^username longer than 256/);
    // a uid full of metacharacters logs in as itself, through the filter and the bind
    assert.deepEqual(await login(LDAP_USERS.hostile.uid, LDAP_USERS.hostile.password), { groups: ['vpn-users'] });
  });

  test('bind as the user (DN template, RFC 4514) with memberOf followed upwards; required groups', async (t) => {
    const s = await startSlapd(t);
    const { login } = await plugin(t, {
      url: s.ldapsUrl,
      ca: s.ca,
      'user-dn': `uid={user},ou=people,${s.base}`,
      users: { base: `ou=people,${s.base}`, filter: '(uid={user})', 'disabled-filter': '(employeeType=disabled)' },
      groups: { nested: 'member-of', map: { 'vpn-users': 'vpn' } },
      'required-groups': ['vpn'],
      cache: { ttl: 0 },
    });
    assert.deepEqual(await login('alice', LDAP_USERS.alice), { groups: ['loop-a', 'loop-b', 'ops-team', 'vpn'] });
    assert.deepEqual(await login(LDAP_USERS.hostile.uid, LDAP_USERS.hostile.password), { groups: ['vpn'] });
    assert.match((await login('bob', LDAP_USERS.bob)).denied?.reason ?? '', /^user is in none of the required groups \(vpn\)/);
    assert.match((await login('alice', 'wrong')).denied?.reason ?? '', /^wrong password or unknown user/);
    assert.match((await login('zed', 'x')).denied?.reason ?? '', /^wrong password or unknown user/);
    assert.match((await login('dave', LDAP_USERS.dave)).denied?.reason ?? '', /^account disabled/);
    // a DN-injection attempt names no other entry
    assert.ok((await login(`alice,ou=people,${s.base}`, LDAP_USERS.alice)).denied);
  });

  test('active-directory: an account whose userAccountControl has the disabled bit is refused, even with the right password', async (t) => {
    const s = await startSlapd(t);
    const { login } = await plugin(
      t,
      searchThenBind(s, { 'active-directory': true, users: { base: `ou=people,${s.base}`, filter: '(&(objectClass=person)(sAMAccountName={user}))' } }),
    );
    assert.deepEqual(await login('erin', LDAP_USERS.erin), { groups: [] });
    assert.equal((await login('frank', LDAP_USERS.frank)).denied?.reason, 'account disabled (userAccountControl)');
    assert.equal((await login('frank', 'wrong')).denied?.reason, 'account disabled (userAccountControl)', 'refused before any bind');
  });

  test('the directory down: denied with the reason, counted for alerts, no strike against the user; a cached login still passes', async (t) => {
    const s = await startSlapd(t);
    const { instance, login } = await plugin(t, searchThenBind(s, { cache: { ttl: '1m' }, limits: { user: { failures: 1 } } }));
    assert.deepEqual(await login('alice', LDAP_USERS.alice), { groups: ['admins', 'loop-a', 'loop-b', 'ops-team', 'vpn-users'] });
    assert.deepEqual(instance.counters?.(), { directory_unreachable: 0 });
    await s.stop();
    assert.deepEqual(await login('alice', LDAP_USERS.alice), { groups: ['admins', 'loop-a', 'loop-b', 'ops-team', 'vpn-users'] }, 'from the cache');
    assert.match((await login('alice', 'another')).denied?.reason ?? '', /^directory unreachable: /, 'a different password is not in the cache');
    assert.match((await login('carol', LDAP_USERS.carol)).denied?.reason ?? '', /^directory unreachable: /);
    assert.match((await login('carol', LDAP_USERS.carol)).denied?.reason ?? '', /^directory unreachable: /, 'not locked out: an outage is no failure of hers');
    // what metrics export as flexscript_plugin_events_total{plugin="ldap-auth",name="directory_unreachable"}
    assert.deepEqual(instance.counters?.(), { directory_unreachable: 3 });
  });

  test('TLS: StartTLS and LDAPS with the pinned CA connect; another CA, or a host the certificate does not name, is refused', async (t) => {
    const s = await startSlapd(t);
    const ok = async (extra: Record<string, unknown>) => (await plugin(t, searchThenBind(s, extra))).login('carol', LDAP_USERS.carol);
    assert.deepEqual(await ok({}), { groups: ['vpn-users'] }, 'StartTLS');
    assert.deepEqual(await ok({ url: s.ldapsUrl, 'start-tls': false }), { groups: ['vpn-users'] }, 'LDAPS');
    assert.match((await ok({ ca: s.otherCa })).denied?.reason ?? '', /^directory unreachable: .*(certificate|self.signed)/i);
    assert.match(
      (await ok({ url: s.ldapsUrl, 'start-tls': false, ca: s.otherCa })).denied?.reason ?? '',
      /^directory unreachable: .*(certificate|self.signed)/i,
    );
    assert.match((await ok({ url: s.unnamedLdapsUrl, 'start-tls': false })).denied?.reason ?? '', /^directory unreachable: .*(altnames|IP: 127\.0\.0\.2)/i);
    assert.deepEqual(await ok({ url: s.unnamedLdapsUrl, 'start-tls': false, 'verify-name': false }), { groups: ['vpn-users'] }, 'verify-name: false');
  });

  test('check: reports server, TLS, bind and what the bases hold, or why the directory cannot be reached', async (t) => {
    const s = await startSlapd(t);
    const { instance } = await plugin(t, searchThenBind(s));
    const r = await instance.check!();
    assert.equal(r.ok, true, r.message);
    assert.match(
      r.message,
      /TLS StartTLS; bind service account cn=flexscript,ou=services,dc=example,dc=test; 7 user entries under ou=people,dc=example,dc=test; 5 groups under ou=groups/,
    );
    await s.stop();
    const down = await instance.check!();
    assert.equal(down.ok, false);
    assert.match(down.message, /^cannot reach the directory at ldap:\/\/127\.0\.0\.1:\d+: /);
  });
});

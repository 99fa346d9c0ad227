import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { ldapAuthSchema } from './options.ts';

const schema = ldapAuthSchema(z);
const issues = (o: unknown) => {
  const r = schema.safeParse(o);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('a minimal bind-as-user config gets safe defaults', () => {
  const o = schema.parse({ url: 'ldaps://dc1.example.com', 'user-dn': 'uid={user},ou=people,dc=example,dc=com' });
  assert.equal(o['verify-name'], true);
  assert.equal(o['start-tls'], false);
  assert.deepEqual(o.timeouts, { connect: 3000, operation: 3000 });
  assert.deepEqual(o.cache, { ttl: 60_000, 'max-entries': 10_000 });
  assert.equal(o.pool.size, 4);
  assert.equal(o.groups.nested, 'member-of');
  assert.equal(o.limits.user.failures, 5);
  assert.equal(o['client-reason'], 'authentication failed');
});

test('refused: both or neither way to find users, a service without users, start-tls on ldaps, group searches without a base, unknown keys', () => {
  const url = 'ldap://dc1.example.com';
  assert.match(issues({ url }).join(), /user-dn: give either user-dn/);
  assert.match(
    issues({ url, 'user-dn': 'uid={user}', service: { dn: 'cn=s', 'password-file': '/p' }, users: { base: 'dc=x', filter: '(uid={user})' } }).join(),
    /give either/,
  );
  assert.match(issues({ url, service: { dn: 'cn=s', 'password-file': '/p' } }).join(), /users: a service account searches users/);
  assert.match(issues({ url: 'ldaps://x', 'start-tls': true, 'user-dn': 'uid={user}' }).join(), /start-tls: ldaps:\/\/ is TLS already/);
  assert.match(issues({ url, 'user-dn': 'uid={user}', groups: { nested: 'ad-in-chain' } }).join(), /groups.base: nested: ad-in-chain searches groups/);
  assert.match(issues({ url, 'user-dn': 'uid=x' }).join(), /user-dn: must contain \{user\}/);
  assert.match(issues({ url, 'user-dn': '{user}@corp.example.com' }).join(), /users: a user-dn that is no DN/);
  assert.match(issues({ url, 'user-dn': 'CORP\\{user}' }).join(), /users: a user-dn that is no DN/);
  assert.deepEqual(
    issues({ url, 'user-dn': '{user}@corp.example.com', users: { base: 'dc=corp', filter: '(userPrincipalName={user}@corp.example.com)' } }),
    [],
  );
  assert.match(issues({ url, 'user-dn': 'uid={user}', users: { base: 'dc=x', filter: 'uid={user}' } }).join(), /users.filter: a filter in parentheses/);
  assert.match(issues({ url: 'http://x', 'user-dn': 'uid={user}' }).join(), /url: ldap:\/\/HOST/);
  assert.match(issues({ url, 'user-dn': 'uid={user}', bogus: 1 }).join(), /Unrecognized key/);
  assert.match(
    issues({ url, 'user-dn': 'uid={user}', 'attribute-groups': [{ attribute: 'a b', value: 'x', group: 'g' }] }).join(),
    /attribute-groups.0.attribute/,
  );
});

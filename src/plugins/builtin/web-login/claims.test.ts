import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupsOf, mapClaims } from './claims.ts';
import { escapeHtml, renderPage } from './pages.ts';

const RULES = { usernameClaim: 'preferred_username', groupsClaim: 'groups', requiredGroups: ['vpn-users'], requiredClaims: { email_verified: true } };

test('claims → username and groups; required groups and claims', () => {
  const alice = { sub: '1', preferred_username: 'alice', groups: ['vpn-users', 'admins'], email_verified: true };
  assert.deepEqual(mapClaims(alice, RULES), { ok: true, username: 'alice', groups: ['vpn-users', 'admins'] });
  assert.deepEqual(mapClaims({ ...alice, groups: ['admins'] }, RULES), { ok: false, reason: 'the user is in none of the required groups (vpn-users)' });
  assert.deepEqual(mapClaims({ ...alice, email_verified: false }, RULES), { ok: false, reason: "the ID token's email_verified claim is not true" });
  assert.deepEqual(mapClaims({ ...alice, preferred_username: undefined }, RULES), {
    ok: false,
    reason: 'the ID token has no usable preferred_username claim for the username',
  });
  assert.deepEqual(mapClaims({ sub: 'x', email: 'a@example.com' }, { usernameClaim: 'email' }), { ok: true, username: 'a@example.com', groups: [] });
  // an array claim contains the required value
  assert.equal(mapClaims({ ...alice, amr: ['pwd', 'mfa'] }, { ...RULES, requiredClaims: { amr: 'mfa' } }).ok, true);
});

test('group names are data: kept as given, deduplicated, bounded; control characters and non-strings dropped', () => {
  assert.deepEqual(groupsOf(['a', 'a', 'b;rm -rf /', 'c\nd', 7, null, '', 'x'.repeat(257)]), ['a', 'b;rm -rf /']);
  assert.deepEqual(groupsOf('one'), ['one']);
  assert.deepEqual(groupsOf(undefined), []);
  assert.deepEqual(groupsOf({ not: 'a list' }), []);
  assert.equal(groupsOf(Array.from({ length: 1000 }, (_, i) => `g${i}`)).length, 256);
  const username = mapClaims({ preferred_username: 'eve\u0007' }, { usernameClaim: 'preferred_username' });
  assert.equal(username.ok, false, 'a username with a control character is refused');
});

test('pages escape everything they show', () => {
  assert.equal(escapeHtml(`<script>alert("x")</script>&'\``), '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;&#39;&#96;');
  const html = renderPage({ status: 403, title: 'VPN login failed', message: '<img src=x onerror=alert(1)>' });
  assert.doesNotMatch(html, /<img/);
  assert.match(html, /&#60;img src=x onerror=alert\(1\)&#62;/);
});

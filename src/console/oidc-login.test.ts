import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LoginProvider, OidcLogin, roleFromClaims } from './oidc-login.ts';
import type { LoginSecrets } from './oidc-provider.ts';

const RULES = { usernameClaim: 'preferred_username', groupsClaim: 'groups', roles: { operator: ['ops'], viewer: ['view', 'audit'] } };

/** A provider that answers the code exchange with the claims given for the code. */
function fakeProvider(claimsByCode: Record<string, Record<string, unknown>>) {
  const seen: LoginSecrets[] = [];
  const provider: LoginProvider = {
    issuer: 'https://idp.example',
    authorizationUrl: async (login) => {
      seen.push(login);
      return new URL(`https://idp.example/auth?state=${login.state}`);
    },
    exchange: async (query, login) => {
      assert.equal(query.get('state'), login.state);
      const claims = claimsByCode[query.get('code') ?? ''];
      if (!claims) throw new Error('invalid_grant');
      return claims;
    },
  };
  return { provider, seen };
}

const callback = (state: string, code: string) => new URLSearchParams({ state, code });

test('groups decide the role: operator before viewer, neither refused; the username claim, else sub', () => {
  assert.equal(roleFromClaims({ sub: 's1', preferred_username: 'ann', groups: ['view', 'ops'] }, RULES).role, 'operator');
  assert.equal(roleFromClaims({ sub: 's1', groups: 'audit' }, RULES).role, 'viewer', 'one group as a string');
  const outsider = roleFromClaims({ sub: 's1', preferred_username: 'bo', groups: ['staff'] }, RULES);
  assert.equal(outsider.role, undefined);
  assert.equal(outsider.user, 'bo');
  assert.equal(roleFromClaims({ sub: 's2', groups: ['ops'] }, RULES).user, 's2', 'no username claim: the subject');
  assert.equal(roleFromClaims({ sub: 's3', preferred_username: 'x\ny', groups: ['ops'] }, RULES).user, 's3', 'a name with a control character is not used');
  assert.equal(roleFromClaims({ sub: 's4', groups: [{ name: 'ops' }, 7] }, RULES).role, undefined, 'only names count as groups');
});

test('a provider login: the state once, in the browser that started it; a replay is refused and named', async () => {
  const { provider, seen } = fakeProvider({
    good: { sub: 'u-1', preferred_username: 'ann', groups: ['ops'] },
    outsider: { sub: 'u-2', preferred_username: 'bo', groups: ['staff'] },
  });
  const login = new OidcLogin({ provider, rules: RULES, ttlMs: 60_000 });
  const a = await login.start();
  const state = seen[0]!.state;
  assert.equal(new URL(a.url).searchParams.get('state'), state);
  assert.match(a.browser, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(seen[0]!.nonce, state);
  assert.ok(seen[0]!.verifier.length >= 43, 'a PKCE verifier of 256 bits');

  const ok = await login.finish(callback(state, 'good'), a.browser);
  assert.deepEqual(ok, { ok: true, user: 'ann', role: 'operator', subject: 'u-1', groups: ['ops'] });
  const again = await login.finish(callback(state, 'good'), a.browser);
  assert.deepEqual(again, { ok: false, status: 400, reason: 'this login was already completed (a replayed callback)' });
  assert.deepEqual(await login.finish(callback('made-up', 'good'), a.browser), { ok: false, status: 400, reason: 'unknown or expired login state' });

  // another browser with the right state: refused, and the state is spent
  const b = await login.start();
  const other = await login.finish(callback(seen[1]!.state, 'good'), a.browser);
  assert.equal(other.ok, false);
  assert.match((other as { reason: string }).reason, /another browser/);
  const late = await login.finish(callback(seen[1]!.state, 'good'), b.browser);
  assert.equal(late.ok ? '' : late.reason, 'this login was already completed (a replayed callback)', 'the right browser comes too late');

  // in no mapped group: refused with who it was
  const c = await login.start();
  assert.deepEqual(await login.finish(callback(seen[2]!.state, 'outsider'), c.browser), {
    ok: false,
    status: 403,
    user: 'bo',
    subject: 'u-2',
    reason: 'bo is in none of the groups that may use this console',
  });

  // the provider refused, or the code exchange failed
  const d = await login.start();
  const refused = await login.finish(new URLSearchParams({ state: seen[3]!.state, error: 'access_denied' }), d.browser);
  assert.deepEqual(refused, { ok: false, status: 403, reason: 'the identity provider refused the login (access_denied)' });
  const e = await login.start();
  const bad = await login.finish(callback(seen[4]!.state, 'forged'), e.browser);
  assert.equal(bad.ok ? 0 : bad.status, 502);
});

test('a login state expires; hostile error codes are not shown as given', async () => {
  let now = 1_000_000;
  const { provider, seen } = fakeProvider({ good: { sub: 'u-1', groups: ['view'] } });
  const login = new OidcLogin({ provider, rules: RULES, ttlMs: 60_000, now: () => now });
  const a = await login.start();
  now += 60_001;
  assert.deepEqual(await login.finish(callback(seen[0]!.state, 'good'), a.browser), {
    ok: false,
    status: 400,
    reason: 'the login took too long (its state expired)',
  });
  const b = await login.start();
  const odd = await login.finish(new URLSearchParams({ state: seen[1]!.state, error: '<script>x</script>' }), b.browser);
  assert.equal(odd.ok ? '' : odd.reason, 'the identity provider refused the login (an error)');
  // expired logins are swept when new ones start: the old state is unknown, not valid
  const c = await login.start();
  now += 120_000;
  await login.start();
  assert.deepEqual(await login.finish(callback(seen[2]!.state, 'good'), c.browser), { ok: false, status: 400, reason: 'unknown or expired login state' });
});

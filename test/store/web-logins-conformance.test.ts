/**
 * Web logins in progress in the store (the web-login plugin's shared state): one suite, both
 * backends. Each step is taken once, an outcome is taken only by its owner and only once, a
 * replay is named as such, and expired rows go.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WebLoginOpen } from '../../src/store/web-logins.ts';
import { STORE_BACKENDS } from '../support/store-backends.ts';

const NOW = 1_700_000_000_000;
const login = (o: Partial<WebLoginOpen> = {}): WebLoginOpen => ({
  id: 'link-1',
  owner: 'daemon-a',
  instance: 'north',
  commonName: 'c-alice',
  realAddress: '198.51.100.7',
  realPort: 51234,
  sameAddress: true,
  expiresAt: NOW + 60_000,
  ...o,
});
const secrets = (n: number) => ({ state: `state-${n}`, nonce: `nonce-${n}`, verifier: `verifier-${n}`, browser: `browser-${n}` });

for (const [name, open, skip] of STORE_BACKENDS) {
  describe(`web logins in the store: ${name}`, { skip }, () => {
    test('link → started once; callback → claimed once (another daemon sees the same row); the owner takes the outcome once', async (t) => {
      const { store, reopen } = await open(t);
      const other = (await reopen()).webLogins;
      const a = store.webLogins;
      await a.open(login());
      await a.open(login({ id: 'link-2', commonName: 'c-bob', realAddress: undefined, realPort: undefined, sameAddress: false }));

      // the browser reaches the other daemon: it starts the login, once
      const started = await other.start('link-1', secrets(1), NOW);
      assert.deepEqual(started, { ok: true, login: login() });
      assert.deepEqual(await a.start('link-1', secrets(9), NOW), { ok: false, why: 'used' });
      assert.deepEqual(await a.start('no-such-link', secrets(9), NOW), { ok: false, why: 'unknown' });

      // the provider's redirect: claimed by one daemon only, with the secrets the start set
      const claims = await Promise.all([a.claim('state-1'), other.claim('state-1')]);
      const won = claims.filter((c) => c.ok);
      assert.equal(won.length, 1, 'one of two concurrent callbacks wins');
      assert.deepEqual(won[0], { ok: true, login: { ...login(), ...secrets(1) } });
      assert.deepEqual(
        claims.find((c) => !c.ok),
        { ok: false, why: 'used' },
      );
      assert.deepEqual(await a.claim('forged-state'), { ok: false, why: 'unknown' });

      const outcome = { ok: true as const, username: 'alice', groups: ['vpn-users', 'a"b\\c'], refreshToken: 'rt-secret' };
      assert.equal(await other.settle('link-1', outcome), true);
      assert.equal(await a.settle('link-1', { ok: false, reason: 'late' }), false, 'only the first outcome counts');

      assert.deepEqual(await other.take('daemon-b', ['link-1']), [], 'another owner takes nothing');
      assert.deepEqual(await a.take('daemon-a', ['link-1', 'link-2']), [{ id: 'link-1', outcome }]);
      assert.deepEqual(await a.take('daemon-a', ['link-1']), [], 'taken once');
      await a.end('link-1');
      assert.deepEqual(await other.claim('state-1'), { ok: false, why: 'used' }, 'a replay after the outcome was taken is named as such');
      assert.deepEqual(await a.take('daemon-a', []), []);
    });

    test('a refused link settles the login from its first steps; an ended login is gone; expired rows are refused and swept', async (t) => {
      const { store } = await open(t);
      const s = store.webLogins;
      await s.open(login());
      assert.equal(await s.settle('link-1', { ok: false, reason: 'the login link was opened twice' }), true);
      assert.deepEqual(await s.take('daemon-a', ['link-1']), [{ id: 'link-1', outcome: { ok: false, reason: 'the login link was opened twice' } }]);
      assert.deepEqual(await s.start('link-1', secrets(1), NOW), { ok: false, why: 'used' });

      await s.open(login({ id: 'link-2' }));
      await s.end('link-2');
      assert.deepEqual(await s.start('link-2', secrets(2), NOW), { ok: false, why: 'unknown' });
      assert.equal(await s.settle('link-2', { ok: true, username: 'x', groups: [] }), false, 'no outcome for a login nobody waits for');

      await s.open(login({ id: 'link-3', expiresAt: NOW + 1000 }));
      assert.deepEqual(await s.start('link-3', secrets(3), NOW + 1000), { ok: false, why: 'expired' });
      await s.open(login({ id: 'link-4', expiresAt: NOW + 1000 }));
      assert.ok((await s.start('link-4', secrets(4), NOW)).ok);
      const late = await s.claim('state-4');
      assert.ok(late.ok && late.login.expiresAt === NOW + 1000, 'claimed with its expiry: the caller refuses it');

      assert.equal(await s.sweep(NOW + 1000), 2, 'the expired rows go');
      assert.deepEqual(await s.start('link-1', secrets(1), NOW), { ok: false, why: 'used' }, 'the taken row stays until its expiry');
      assert.equal(await s.sweep(NOW + 60_000), 1, 'then it goes too');
      assert.deepEqual(await s.claim('state-4'), { ok: false, why: 'unknown' });
      assert.deepEqual(await s.start('link-3', secrets(3), NOW), { ok: false, why: 'unknown' });
    });

    test('a state is unique: two logins cannot share one', async (t) => {
      const { store } = await open(t);
      const s = store.webLogins;
      await s.open(login());
      await s.open(login({ id: 'link-2' }));
      assert.ok((await s.start('link-1', secrets(1), NOW)).ok);
      await assert.rejects(s.start('link-2', secrets(1), NOW));
      await assert.rejects(s.open(login()), 'an id is opened once');
    });
  });
}

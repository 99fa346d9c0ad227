import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginCache } from './login-cache.ts';

test('a cached login matches only the same username and password, until its ttl', () => {
  let now = 1000;
  const cache = new LoginCache<string[]>(60_000, 10, () => now);
  cache.set('alice', 'pw-1', ['ops']);
  assert.deepEqual(cache.get('alice', 'pw-1'), ['ops']);
  assert.equal(cache.get('alice', 'pw-2'), undefined, 'another password');
  assert.equal(cache.get('bob', 'pw-1'), undefined, 'another user');
  now += 59_999;
  assert.deepEqual(cache.get('alice', 'pw-1'), ['ops']);
  now += 1;
  assert.equal(cache.get('alice', 'pw-1'), undefined, 'expired');
  assert.equal(cache.size, 0);
});

test('at most maxEntries are kept (oldest dropped); ttl 0 caches nothing; delete forgets a user', () => {
  const cache = new LoginCache<number>(60_000, 3);
  for (let i = 0; i < 10; i++) cache.set(`u${i}`, 'p', i);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('u0', 'p'), undefined);
  assert.equal(cache.get('u9', 'p'), 9);
  cache.delete('u9');
  assert.equal(cache.get('u9', 'p'), undefined);
  const none = new LoginCache<number>(0, 3);
  none.set('a', 'p', 1);
  assert.equal(none.get('a', 'p'), undefined);
  assert.equal(none.size, 0);
});

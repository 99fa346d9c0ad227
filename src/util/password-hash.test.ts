import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { dummyHashLike, hashPassword, MAX_PASSWORD_BYTES, verifyPassword } from './password-hash.ts';
import { classifyHash } from './hash-format.ts';

// PHP's documented password_hash example: "rasmuslerdorf" hashed with PASSWORD_BCRYPT ($2y$)
const PHP_VECTOR = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a';
const hasHtpasswd = spawnSync('htpasswd', ['-h'], { stdio: 'ignore' }).error === undefined;

test('argon2id: new hashes verify, with the documented parameters, and wrong passwords do not', async () => {
  const hash = await hashPassword('correct horse ✓');
  assert.match(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  assert.deepEqual(classifyHash(hash), { kind: 'argon2id' });
  assert.equal(await verifyPassword(hash, 'correct horse ✓'), true);
  assert.equal(await verifyPassword(hash, 'correct horse'), false);
  assert.equal(await verifyPassword(hash, ''), false);
  assert.notEqual(await hashPassword('correct horse ✓'), hash, 'salted');
});

test('bcrypt: a known $2y$ vector verifies', async () => {
  assert.equal(await verifyPassword(PHP_VECTOR, 'rasmuslerdorf'), true);
  assert.equal(await verifyPassword(PHP_VECTOR, 'rasmuslerdorF'), false);
});

test('bcrypt: a hash made by htpasswd -B verifies', { skip: hasHtpasswd ? false : 'htpasswd (apache2-utils) is not installed' }, async () => {
  const out = spawnSync('htpasswd', ['-nbB', '-C', '5', 'alice', 'pa$$ wörd'], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const hash = out.stdout.trim().split(':')[1]!;
  assert.match(hash, /^\$2y\$05\$/);
  assert.equal(await verifyPassword(hash, 'pa$$ wörd'), true);
  assert.equal(await verifyPassword(hash, 'pa$$ word'), false);
});

test('anything but argon2id and bcrypt never verifies; oversized passwords are refused unhashed', async () => {
  assert.equal(await verifyPassword('secret', 'secret'), false);
  assert.equal(await verifyPassword('$apr1$salt$hash', 'x'), false);
  const long = 'x'.repeat(MAX_PASSWORD_BYTES + 1);
  const hash = await hashPassword(long);
  assert.equal(await verifyPassword(hash, long), false);
});

test('the dummy hash has the algorithm and cost of the hash it imitates', async () => {
  const argon = await dummyHashLike({
    hash: '$argon2id$v=19$m=8192,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$8S6nO1KuKHVyP2kE5nKb+Xg4m2s6ZMQ9ubV2ZcG6p1Q',
    kind: 'argon2id',
  });
  assert.match(argon, /^\$argon2id\$v=19\$m=8192,p=2,t=3\$/);
  const bcrypt = await dummyHashLike({ hash: PHP_VECTOR.replace('$10$', '$05$'), kind: 'bcrypt' });
  assert.match(bcrypt, /^\$2[aby]\$05\$/);
  assert.match(await dummyHashLike(undefined), /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
});

test('verification does not block the event loop (argon2 and bcrypt)', async () => {
  const hash = await hashPassword('pw');
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 2);
  const started = performance.now();
  const results = await Promise.all([
    ...Array.from({ length: 6 }, () => verifyPassword(hash, 'pw')),
    verifyPassword(PHP_VECTOR, 'rasmuslerdorf'),
    verifyPassword(PHP_VECTOR, 'nope'),
  ]);
  const took = performance.now() - started;
  clearInterval(timer);
  assert.deepEqual(results, [true, true, true, true, true, true, true, false]);
  // a bcrypt check at cost 10 alone takes about 200 ms of CPU; timers kept running meanwhile
  assert.ok(longest < Math.max(80, took / 3), `the event loop stalled for ${Math.round(longest)} ms (checks took ${Math.round(took)} ms)`);
});

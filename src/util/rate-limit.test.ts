import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, RateLimiter } from './rate-limit.ts';

const MIN = 60_000;

function limiter(o: Partial<ConstructorParameters<typeof RateLimiter>[0]> = {}) {
  const clock = { now: 1_000_000 };
  const l = new RateLimiter({ failures: 3, window: 15 * MIN, lockout: MIN, maxLockout: 8 * MIN, maxKeys: 1000, ...o }, () => clock.now);
  return { l, clock };
}

test('a burst of failures locks the key; the lockout ends on time', () => {
  const { l, clock } = limiter();
  assert.equal(l.failure('bob'), undefined);
  assert.equal(l.failure('bob'), undefined);
  assert.deepEqual(l.check('bob'), { locked: false });
  assert.equal(l.failure('bob'), MIN);
  assert.deepEqual(l.check('bob'), { locked: true, retryAfterMs: MIN });
  assert.deepEqual(l.check('alice'), { locked: false }, 'other keys are not affected');
  clock.now += MIN - 1;
  assert.equal(l.check('bob').locked, true);
  clock.now += 1;
  assert.deepEqual(l.check('bob'), { locked: false });
});

test('each further lockout doubles, up to the maximum', () => {
  const { l, clock } = limiter({ maxLockout: 4 * MIN });
  for (let i = 0; i < 2; i++) l.failure('bob');
  const lockouts: (number | undefined)[] = [l.failure('bob')];
  for (let i = 0; i < 5; i++) {
    clock.now += lockouts.at(-1)!;
    lockouts.push(l.failure('bob'));
  }
  assert.deepEqual(lockouts, [MIN, 2 * MIN, 4 * MIN, 4 * MIN, 4 * MIN, 4 * MIN]);
});

test('in the long run no more than `failures` per `window` get through, however long the lockouts', () => {
  const { l, clock } = limiter();
  let tried = 0;
  const end = clock.now + 24 * 60 * MIN;
  while (clock.now < end) {
    const c = l.check('bob');
    if (c.locked) clock.now += c.retryAfterMs;
    else {
      l.failure('bob');
      tried++;
    }
  }
  assert.ok(tried <= 3 + (24 * 60 * 3) / 15, `${tried} guesses in a day`);
});

test('the allowance refills over the window, and a full bucket forgets the key and its strikes', () => {
  const { l, clock } = limiter();
  l.failure('bob');
  l.failure('bob');
  clock.now += 5 * MIN; // one failure's worth back
  assert.equal(l.failure('bob'), undefined);
  assert.equal(l.failure('bob'), MIN);
  clock.now += 15 * MIN;
  l.failure('x'); // any failure tidies nothing by itself; bob is refilled on its own next use
  assert.equal(l.failure('bob'), undefined, 'a full bucket again');
  assert.equal(l.failure('bob'), undefined);
  assert.equal(l.failure('bob'), MIN, 'strikes were forgotten: back to the first lockout');
});

test('success forgets a key', () => {
  const { l } = limiter();
  l.failure('bob');
  l.failure('bob');
  l.success('bob');
  assert.equal(l.size, 0);
  assert.equal(l.failure('bob'), undefined);
  assert.equal(l.failure('bob'), undefined);
});

test('memory stays bounded under a flood of random keys; the latest keys are kept', () => {
  const { l } = limiter({ maxKeys: 1000, failures: 1 });
  for (let i = 0; i < 50_000; i++) l.failure(`random-${i}-${Math.random()}`);
  assert.equal(l.size, 1000);
  l.failure('recent');
  assert.equal(l.check('recent').locked, true);
  assert.equal(l.size, 1000);
});

test('options must be positive', () => {
  assert.throws(() => limiter({ failures: 0 }), RangeError);
  assert.throws(() => limiter({ window: 0 }), RangeError);
});

test('addresses: IPv4 as is, IPv6 per /64, IPv4-mapped as IPv4', () => {
  assert.equal(addressKey('198.51.100.7'), '198.51.100.7');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
});

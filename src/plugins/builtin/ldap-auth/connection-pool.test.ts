import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionPool } from './connection-pool.ts';

test('never more than size connections; callers beyond wait in order and reuse released ones', async () => {
  let created = 0;
  let destroyed = 0;
  const pool = new ConnectionPool({ size: 2, create: async () => ++created, destroy: () => void destroyed++ });
  const a = await pool.acquire();
  const b = await pool.acquire();
  const order: number[] = [];
  const c = pool.acquire().then((l) => {
    order.push(1);
    return l;
  });
  const d = pool.acquire().then((l) => {
    order.push(2);
    return l;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(pool.open, 2);
  assert.equal(pool.waiting, 2);
  a.release();
  b.release();
  const [lc, ld] = await Promise.all([c, d]);
  assert.deepEqual(order, [1, 2]);
  assert.equal(created, 2, 'released connections are reused');
  lc.release(true);
  assert.equal(pool.open, 1, 'a broken connection is destroyed');
  ld.release();
  await pool.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(pool.open, 0);
  assert.equal(destroyed, 2);
});

test('a failed create frees its slot; a waiter that gives up leaves the queue', async () => {
  let fail = true;
  const pool = new ConnectionPool({ size: 1, create: async () => (fail ? Promise.reject(new Error('refused')) : 'conn'), destroy: () => undefined });
  await assert.rejects(pool.acquire(), /refused/);
  assert.equal(pool.open, 0);
  fail = false;
  const held = await pool.acquire();
  const ac = new AbortController();
  const waiting = pool.acquire(ac.signal);
  ac.abort(new Error('gave up'));
  await assert.rejects(waiting, /gave up/);
  assert.equal(pool.waiting, 0);
  held.release();
  (await pool.acquire()).release();
  await pool.close();
});

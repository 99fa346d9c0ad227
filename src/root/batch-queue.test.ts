import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchQueue } from './batch-queue.ts';

/** A fake applier: records batches, takes `ms` per run, fails batches holding a "bad" op. */
function recorder(ms = 5) {
  const batches: string[][] = [];
  let running = 0;
  let maxRunning = 0;
  const applyBatch = async (ops: readonly string[]) => {
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    batches.push([...ops]);
    await new Promise((r) => setTimeout(r, ms));
    running -= 1;
    if (ops.some((o) => o.startsWith('bad'))) throw new Error(`refused ${ops.join(',')}`);
  };
  return { batches, applyBatch, maxRunning: () => maxRunning };
}

describe('BatchQueue', () => {
  it('a burst of 300 changes becomes one batch', async () => {
    const r = recorder();
    const q = new BatchQueue<string>({ applyBatch: r.applyBatch, windowMs: 5, maxBatch: 5000 });
    const ops = Array.from({ length: 300 }, (_, i) => `op${i}`);
    await Promise.all(ops.map((o) => q.enqueue(o)));
    assert.equal(r.batches.length, 1);
    assert.deepEqual(r.batches[0], ops, 'in arrival order');
  });

  it('changes arriving during a run gather into the next batch; runs never overlap', async () => {
    const r = recorder(20);
    const q = new BatchQueue<string>({ applyBatch: r.applyBatch, windowMs: 1, maxBatch: 5000 });
    const done: Promise<void>[] = [];
    // a trickle: one change every 2 ms for 100 ms
    for (let i = 0; i < 50; i += 1) {
      done.push(q.enqueue(`op${i}`));
      await new Promise((res) => setTimeout(res, 2));
    }
    await Promise.all(done);
    assert.ok(r.batches.length < 15, `50 trickled changes took ${r.batches.length} runs`);
    assert.equal(r.maxRunning(), 1);
    assert.deepEqual(
      r.batches.flat(),
      Array.from({ length: 50 }, (_, i) => `op${i}`),
    );
  });

  it('respects maxBatch', async () => {
    const r = recorder(1);
    const q = new BatchQueue<string>({ applyBatch: r.applyBatch, windowMs: 1, maxBatch: 100 });
    await Promise.all(Array.from({ length: 250 }, (_, i) => q.enqueue(`op${i}`)));
    assert.deepEqual(
      r.batches.map((b) => b.length),
      [100, 100, 50],
    );
  });

  it('a failed batch is retried one by one: only the bad change fails', async () => {
    const r = recorder(1);
    const q = new BatchQueue<string>({ applyBatch: r.applyBatch, windowMs: 5, maxBatch: 5000 });
    const results = await Promise.allSettled(['a', 'bad1', 'c'].map((o) => q.enqueue(o)));
    assert.deepEqual(
      results.map((x) => x.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(r.batches, [['a', 'bad1', 'c'], ['a'], ['bad1'], ['c']]);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /refused bad1/);
  });

  it('an exclusive job runs alone, after what was queued before it and before what came after', async () => {
    const r = recorder(1);
    const order: string[] = [];
    const q = new BatchQueue<string>({
      applyBatch: async (ops) => {
        order.push(`batch:${ops.join(',')}`);
        await r.applyBatch(ops);
      },
      windowMs: 5,
      maxBatch: 5000,
    });
    const a = q.enqueue('a');
    const b = q.enqueue('b');
    const job = q.exclusive(async () => {
      order.push('job');
      return 42;
    });
    const c = q.enqueue('c');
    assert.equal(await job, 42);
    await Promise.all([a, b, c]);
    assert.deepEqual(order, ['batch:a,b', 'job', 'batch:c']);
  });

  it('a failing exclusive job rejects only itself', async () => {
    const r = recorder(1);
    const q = new BatchQueue<string>({ applyBatch: r.applyBatch, windowMs: 1, maxBatch: 5000 });
    const job = q.exclusive(async () => {
      throw new Error('boom');
    });
    const after = q.enqueue('x');
    await assert.rejects(job, /boom/);
    await after;
    assert.equal(q.pending, 0);
  });
});

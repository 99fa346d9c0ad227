/**
 * The concurrency limits (the exec plugin's per-script limit and the dispatcher's event slots)
 * never let more than `limit` runs in at once, whatever the order of releases, new arrivals
 * and aborted waiters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Semaphore } from '../../src/util/semaphore.ts';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves after `n` microtask turns: arrivals and releases land between each other's steps. */
async function turns(n: number): Promise<void> {
  for (let k = 0; k < n; k++) await Promise.resolve();
}

/**
 * Runs `n` steps through `run`; each arrives after a number of microtask turns (or a tick) and
 * holds its slot for a number of them, so some arrive right between a release and the moment the
 * waiter it woke resumes. Returns the peak number inside at once.
 */
async function peak(
  run: (step: () => Promise<void>, i: number) => Promise<void>,
  n: number,
  pattern: (i: number) => number,
): Promise<{ max: number; done: number }> {
  let inside = 0;
  let max = 0;
  let done = 0;
  const step = async (i: number) => {
    inside++;
    max = Math.max(max, inside);
    await turns(pattern(i));
    if (pattern(i + 3) === 0) await tick();
    inside--;
    done++;
  };
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    all.push(turns(pattern(i + 11) + (i % 7)).then(() => run(() => step(i), i)));
    if (i % 10 === 9) await tick();
  }
  await Promise.allSettled(all);
  return { max, done };
}

const patterns: ((i: number) => number)[] = [() => 0, () => 1, (i) => i % 4, (i) => (i * 7) % 5, (i) => (i % 3 === 0 ? 0 : 3)];

test('the exec limiter with limit 1 never runs two scripts at once (a woken waiter keeps its slot)', async () => {
  for (const [p, pattern] of patterns.entries()) {
    const limiter = new Semaphore(1);
    const r = await peak((step) => limiter.run(step), 40, pattern);
    assert.equal(r.done, 40, `pattern ${p}: every run ran`);
    assert.equal(r.max, 1, `pattern ${p}: at most 1 at once, saw ${r.max}`);
  }
});

test('the exec limiter with limit 3 holds at 3, also when queued waiters are aborted', async () => {
  for (const [p, pattern] of patterns.entries()) {
    const limiter = new Semaphore(3);
    const aborts: AbortController[] = [];
    const r = await peak(
      (step, i) => {
        const ac = new AbortController();
        aborts.push(ac);
        const run = limiter.run(step, ac.signal).catch(() => {});
        // every fifth waiter gives up while queued
        if (i % 5 === 4) void tick().then(() => ac.abort());
        return run;
      },
      60,
      pattern,
    );
    assert.ok(r.max <= 3, `pattern ${p}: at most 3 at once, saw ${r.max}`);
    assert.equal(limiter.waiting, 0);
  }
});

test('an aborted waiter does not take a slot, and a slot is free again after every run', async () => {
  const limiter = new Semaphore(1);
  let release!: () => void;
  const first = limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
  const ac = new AbortController();
  const second = limiter.run(async () => 'ran', ac.signal);
  ac.abort(new Error('gave up'));
  await assert.rejects(second, /gave up/);
  release();
  await first;
  assert.equal(await limiter.run(async () => 'next'), 'next');
  assert.equal(limiter.waiting, 0);
});

test("the dispatcher's semaphore with size 1 never lets two events in at once", async () => {
  for (const [p, pattern] of patterns.entries()) {
    const sem = new Semaphore(1);
    const r = await peak(
      async (step) => {
        const release = await sem.acquire();
        try {
          await step();
        } finally {
          release();
        }
      },
      40,
      pattern,
    );
    assert.equal(r.done, 40);
    assert.equal(r.max, 1, `pattern ${p}: at most 1 at once, saw ${r.max}`);
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../lab/wait.ts';
import { startHeapTrim } from './heap-trim.ts';

/** Keeps the event loop busy, synchronously, for `ms`. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('after a busy spell that grew the heap, a quiet daemon trims it; a busy one never', async (t) => {
  const trim = startHeapTrim(50);
  t.after(() => trim.stop());
  // a storm: objects in flight grow the heap, then are let go
  let inFlight: { i: number; text: string }[] | undefined = Array.from({ length: 400_000 }, (_, i) => ({ i, text: `client-${i}` }));
  const grown = process.memoryUsage().heapTotal;
  inFlight = undefined;
  // busy through several periods: no trim while the loop works
  for (let i = 0; i < 5; i++) {
    spin(150);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(trim.trims, 0, 'no trim while the event loop was busy');
  await waitFor('a trim once quiet', () => trim.trims > 0, { timeoutMs: 30_000 });
  assert.ok(process.memoryUsage().heapTotal < grown, `heap ${process.memoryUsage().heapTotal} after the trim, ${grown} before`);
  assert.equal(inFlight, undefined);
  // quiet and not grown since: a trim that left the young generation grown is tried four times
  // more at most, then no more
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const trims = trim.trims;
  assert.ok(trims <= 5, `${trims} trims`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(trim.trims, trims);
});

/**
 * @module heap-trim
 * Gives back the memory a storm made V8 take. Through a burst of connects V8 grows its young
 * generation (up to 2 × 16 MiB) and promotes what is in flight into the old one; it shrinks them
 * again only at a full collection made while little is being allocated, which an idle daemon,
 * allocating nothing, never makes. With 1,000 live sessions that left about 40 MB more resident
 * after the ramp than after one full collection (the sessions themselves hold about 2 MB).
 *
 * So once the daemon has been quiet for two whole periods (its event loop busy less than a few
 * percent of each) and its heap has grown since the last trim (or it never trimmed: start-up leaves
 * garbage too), it runs one full collection. V8 shrinks its young generation at such a
 * collection only when it measured little allocation just before it; when it did not, a later
 * quiet period tries again, four times at most. That pause (tens of ms at a few thousand sessions, more at 100,000) falls when nothing waits.
 *
 * V8 lends that collection only to `--expose-gc`; the flag is set at run time and the function
 * taken from a fresh context, so no global `gc` appears in the daemon's own.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the daemon looks whether it is quiet and its heap has grown. */
export const HEAP_TRIM_INTERVAL_MS = 5_000;
/** Quiet: the event loop was busy less than this share of the last period. */
const QUIET = 0.05;
/** Quiet periods in a row before a trim: V8 shrinks its young generation only once it has seen little allocation. */
const QUIET_PERIODS = 2;
/** Grown: the heap V8 holds is this much larger than after the last trim. */
const GROWTH_BYTES = 4 * 1024 * 1024;
/** The young generation's size at rest (V8 starts it at 1 MiB); above it after a trim, the trim is tried again. */
const YOUNG_AT_REST = 2 * 1024 * 1024;
/** Tries again after a trim that left the young generation grown. */
const RETRIES = 4;

let fullCollection: (() => void) | undefined;

/** V8's full collection, made available once. */
function collector(): () => void {
  if (!fullCollection) {
    setFlagsFromString('--expose-gc');
    fullCollection = runInNewContext('gc') as () => void;
  }
  return fullCollection;
}

/** The young generation's size: what a storm grows most, and what a trim should give back. */
const youngGeneration = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

interface HeapTrim {
  /** Trims done so far. */
  readonly trims: number;
  stop(): void;
}

/** Starts looking every `intervalMs`; the timer keeps no process alive. */
export function startHeapTrim(intervalMs = HEAP_TRIM_INTERVAL_MS): HeapTrim {
  const gc = collector();
  const heapTotal = () => process.memoryUsage().heapTotal;
  // start-up (config, schemas, plugins) left garbage too: the first quiet spell trims it
  let trimmedAt = 0;
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let quiet = 0;
  let again = 0;
  let trims = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    quiet = busy < QUIET ? quiet + 1 : 0;
    if (quiet < QUIET_PERIODS) return;
    const grown = heapTotal() >= trimmedAt + GROWTH_BYTES;
    // V8 keeps the young generation's size when it measured much allocation just before the
    // collection: a later quiet period tries again, a few times
    const youngLeft = youngGeneration() > YOUNG_AT_REST && again < RETRIES;
    if (!grown && !youngLeft) return;
    gc();
    trims++;
    again = grown ? 0 : again + 1;
    trimmedAt = heapTotal();
    // the collection itself is not the next period's work
    last = performance.eventLoopUtilization();
  }, intervalMs);
  timer.unref();
  return {
    get trims() {
      return trims;
    },
    stop: () => clearInterval(timer),
  };
}

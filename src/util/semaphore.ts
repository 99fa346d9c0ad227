/**
 * @module semaphore
 * Bounds how many runs go at once; the rest wait in order (backpressure under storms). A
 * release hands its slot straight to the first waiter, so a caller arriving between the release
 * and the moment that waiter resumes finds no free slot: never more than `size` at once.
 */
export class Semaphore {
  #free: number;
  readonly #queue: (() => void)[] = [];

  constructor(readonly size: number) {
    this.#free = size;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with a release function once a slot is this caller's. With `signal`, a caller that
   * gives up while queued leaves the queue (rejecting with the signal's reason) and holds no slot.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#free > 0) this.#free--;
    else {
      await new Promise<void>((resolve, reject) => {
        const granted = () => {
          signal?.removeEventListener('abort', drop);
          resolve();
        };
        const drop = () => {
          const i = this.#queue.indexOf(granted);
          // already granted: the slot is this caller's and comes back through release
          if (i < 0) return;
          this.#queue.splice(i, 1);
          reject(signal?.reason ?? new Error('aborted while queued'));
        };
        signal?.addEventListener('abort', drop, { once: true });
        this.#queue.push(granted);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // the slot passes to the first waiter without becoming free in between
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    };
  }

  /** Runs `step` in a slot, released however it ends. */
  async run<T>(step: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await step();
    } finally {
      release();
    }
  }
}

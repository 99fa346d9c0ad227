/**
 * @module batch-queue
 * One queue for everything that runs nft, in arrival order. Small changes (set adds and
 * removes) that arrive within a short window, or while a run is in flight, are applied together
 * as one batch (one nft transaction, one process); exclusive jobs (ensure, list, reconcile) run
 * alone, between batches. Each change still gets its own result: when a batch fails, its
 * changes are retried one by one, so one bad element does not fail the others.
 */

export interface BatchQueueOptions<Op> {
  /** Applies a batch; must reject when any change in it failed (nothing applied). */
  applyBatch(ops: readonly Op[]): Promise<void>;
  /** How long the first change of a batch waits for more to join it. */
  readonly windowMs: number;
  /** Largest batch; more changes wait for the next one. */
  readonly maxBatch: number;
}

type Entry<Op> = { readonly kind: 'op'; readonly op: Op; resolve(): void; reject(err: unknown): void } | { readonly kind: 'job'; run(): Promise<void> };

export class BatchQueue<Op> {
  readonly #options: BatchQueueOptions<Op>;
  readonly #queue: Entry<Op>[] = [];
  #busy = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: BatchQueueOptions<Op>) {
    this.#options = options;
  }

  /** Queues one change; resolves when it has been applied. */
  enqueue(op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: 'op', op, resolve, reject });
      // the window only applies when idle: while a run is in flight, changes gather anyway
      if (!this.#busy && this.#timer === undefined) this.#timer = setTimeout(() => this.#drain(), this.#options.windowMs);
    });
  }

  /** Runs `fn` alone, after everything queued before it. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ kind: 'job', run: () => Promise.resolve().then(fn).then(resolve, reject) });
      if (!this.#busy) this.#drain();
    });
  }

  /** Changes and jobs not yet finished (for tests and logs). */
  get pending(): number {
    return this.#queue.length;
  }

  #drain(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#busy) return;
    const head = this.#queue[0];
    if (!head) return;
    this.#busy = true;
    const done = () => {
      this.#busy = false;
      this.#drain();
    };
    if (head.kind === 'job') {
      this.#queue.shift();
      head.run().finally(done);
      return;
    }
    const batch: Extract<Entry<Op>, { kind: 'op' }>[] = [];
    for (const entry of this.#queue) {
      if (entry.kind !== 'op' || batch.length >= this.#options.maxBatch) break;
      batch.push(entry);
    }
    this.#queue.splice(0, batch.length);
    this.#applyBatch(batch).finally(done);
  }

  async #applyBatch(batch: readonly Extract<Entry<Op>, { kind: 'op' }>[]): Promise<void> {
    try {
      await this.#options.applyBatch(batch.map((e) => e.op));
      for (const e of batch) e.resolve();
      return;
    } catch (err) {
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
    }
    for (const e of batch) {
      try {
        await this.#options.applyBatch([e.op]);
        e.resolve();
      } catch (err) {
        e.reject(err);
      }
    }
  }
}

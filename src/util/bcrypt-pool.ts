/**
 * @module bcrypt-pool
 * bcrypt checks in worker threads. bcryptjs is plain JavaScript: even its asynchronous API
 * holds the event loop for the whole key setup (about 200 ms at cost 10 here), which would
 * stall every other client's event. A few workers keep that work off the daemon's loop. The
 * workers do not keep the process alive when idle.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// plain CommonJS, so the worker needs no TypeScript loader
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcrypt);
parentPort.on('message', ({ id, password, hash, cost }) => {
  let result = false;
  try { result = cost ? bcrypt.hashSync(password, cost) : bcrypt.compareSync(password, hash); } catch {}
  parentPort.postMessage({ id, result });
});
`;

interface Slot {
  readonly worker: Worker;
  readonly waiting: Map<number, { resolve: (result: boolean | string) => void; reject: (err: Error) => void }>;
}

export class BcryptPool {
  #slots: Slot[] = [];
  #next = 0;
  #id = 0;

  constructor(private readonly size = Math.max(1, Math.min(2, availableParallelism()))) {}

  /** True when `password` matches the bcrypt `hash`; false when it does not or is malformed. */
  async compare(password: string, hash: string): Promise<boolean> {
    return (await this.#ask({ password, hash })) === true;
  }

  /** A new bcrypt hash of `password` at `cost`. */
  async hash(password: string, cost: number): Promise<string> {
    const result = await this.#ask({ password, cost });
    if (typeof result !== 'string') throw new Error('bcrypt hashing failed');
    return result;
  }

  #ask(request: { password: string; hash?: string; cost?: number }): Promise<boolean | string> {
    const slot = this.#slot();
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      if (slot.waiting.size === 0) slot.worker.ref();
      slot.waiting.set(id, { resolve, reject });
      slot.worker.postMessage({ id, ...request });
    });
  }

  /** Stops the workers; checks in progress fail. */
  async close(): Promise<void> {
    const slots = this.#slots;
    this.#slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #slot(): Slot {
    if (this.#slots.length < this.size) this.#slots.push(this.#start());
    const slot = this.#slots[this.#next++ % this.#slots.length]!;
    return slot;
  }

  #start(): Slot {
    const bcrypt = createRequire(import.meta.url).resolve('bcryptjs');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcrypt } });
    const slot: Slot = { worker, waiting: new Map() };
    worker.unref();
    worker.on('message', ({ id, result }: { id: number; result: boolean | string }) => {
      slot.waiting.get(id)?.resolve(result);
      slot.waiting.delete(id);
      if (slot.waiting.size === 0) worker.unref();
    });
    const fail = (err: Error) => {
      for (const w of slot.waiting.values()) w.reject(err);
      slot.waiting.clear();
      // a dead worker is replaced at the next check
      this.#slots = this.#slots.filter((s) => s !== slot);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`bcrypt worker exited (${code})`)));
    return slot;
  }
}

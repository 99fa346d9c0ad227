/**
 * @module connection-pool
 * A bounded pool of connections (the service account's, already bound): at most `size` exist at
 * once; a caller beyond that waits in order (or gives up with its signal). A connection that
 * failed is destroyed instead of returned, so the next caller gets a fresh one. Idle connections
 * are closed after `idleMs`.
 */
import { Semaphore } from '../../../util/semaphore.ts';

export interface PoolOptions<T> {
  readonly size: number;
  readonly create: (signal?: AbortSignal) => Promise<T>;
  readonly destroy: (resource: T) => Promise<void> | void;
  readonly idleMs?: number;
}

export interface Lease<T> {
  readonly resource: T;
  /** Gives the connection back; `broken` destroys it instead. */
  release(broken?: boolean): void;
}

export class ConnectionPool<T> {
  readonly #slots: Semaphore;
  readonly #idle: { resource: T; timer: NodeJS.Timeout | undefined }[] = [];
  #open = 0;
  #closed = false;

  constructor(private readonly options: PoolOptions<T>) {
    if (options.size < 1) throw new RangeError('pool size must be at least 1');
    this.#slots = new Semaphore(options.size);
  }

  /** Connections open now (in use or idle); never more than `size`. */
  get open(): number {
    return this.#open;
  }

  get waiting(): number {
    return this.#slots.waiting;
  }

  async acquire(signal?: AbortSignal): Promise<Lease<T>> {
    if (this.#closed) throw new Error('the connection pool is closed');
    const free = await this.#slots.acquire(signal);
    let resource: T;
    const idle = this.#idle.pop();
    if (idle) {
      clearTimeout(idle.timer);
      resource = idle.resource;
    } else {
      try {
        this.#open++;
        resource = await this.options.create(signal);
      } catch (err) {
        this.#open--;
        free();
        throw err;
      }
    }
    let done = false;
    return {
      resource,
      release: (broken = false) => {
        if (done) return;
        done = true;
        if (broken || this.#closed) this.#drop(resource);
        else {
          const entry = { resource, timer: undefined as NodeJS.Timeout | undefined };
          if (this.options.idleMs !== undefined) {
            entry.timer = setTimeout(() => {
              const i = this.#idle.indexOf(entry);
              if (i >= 0) {
                this.#idle.splice(i, 1);
                this.#drop(resource);
              }
            }, this.options.idleMs);
            entry.timer.unref();
          }
          this.#idle.push(entry);
        }
        free();
      },
    };
  }

  #drop(resource: T): void {
    this.#open--;
    void Promise.resolve()
      .then(() => this.options.destroy(resource))
      .catch(() => undefined);
  }

  /** Closes the idle connections; those in use close when released. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    for (const e of idle) {
      clearTimeout(e.timer);
      this.#open--;
      await Promise.resolve(this.options.destroy(e.resource)).catch(() => undefined);
    }
  }
}

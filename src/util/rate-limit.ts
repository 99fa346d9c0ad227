/**
 * @module rate-limit
 * Limits failed logins per key (a user name, a source address). Each key has a token bucket of
 * `failures` tokens that refills over `window`: every failure takes one, and the failure that
 * empties it locks the key for `lockout`. Each further lockout before the bucket has filled up
 * again lasts twice as long, up to `maxLockout`. A locked key is refused without checking the
 * password. Memory is bounded: at most `maxKeys` keys are remembered, least recently failed
 * dropped first, and a key whose bucket is full again is forgotten. Time comes from `now`, so
 * tests run on a fake clock.
 */

export interface RateLimitOptions {
  /** Failures allowed in a burst before the first lockout. */
  readonly failures: number;
  /** Time (ms) for a full bucket to refill: `failures` per `window` in the long run. */
  readonly window: number;
  /** First lockout (ms); it doubles with each further lockout. */
  readonly lockout: number;
  /** Longest lockout (ms). */
  readonly maxLockout: number;
  /** Keys remembered at most. */
  readonly maxKeys: number;
}

interface Bucket {
  tokens: number;
  at: number;
  lockedUntil: number;
  /** Lockouts since the bucket was last full: the next lockout lasts lockout * 2^strikes. */
  strikes: number;
}

export type LimitCheck = { readonly locked: false } | { readonly locked: true; readonly retryAfterMs: number };

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    private readonly options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (options.failures < 1 || options.window <= 0 || options.lockout <= 0 || options.maxKeys < 1) throw new RangeError('rate limit options must be positive');
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Whether `key` is locked out now. */
  check(key: string): LimitCheck {
    const b = this.#buckets.get(key);
    const now = this.now();
    if (!b || b.lockedUntil <= now) return { locked: false };
    return { locked: true, retryAfterMs: b.lockedUntil - now };
  }

  /** Counts a failure; returns the lockout it started (ms), if any. */
  failure(key: string): number | undefined {
    const now = this.now();
    const b = this.#refilled(key, now) ?? { tokens: this.options.failures, at: now, lockedUntil: 0, strikes: 0 };
    // tokens may go below zero: a failure right after a lockout is a debt paid back by waiting
    b.tokens -= 1;
    let locked: number | undefined;
    if (b.tokens < 1 && b.lockedUntil <= now) {
      locked = Math.min(this.options.lockout * 2 ** b.strikes, this.options.maxLockout);
      b.lockedUntil = now + locked;
      b.strikes = Math.min(b.strikes + 1, 30);
    }
    // re-inserting keeps the map ordered by last failure: the first key is the one to drop
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.options.maxKeys) this.#evict();
    return locked;
  }

  /** A success forgets the key's failures (only ever called for keys that were not locked). */
  success(key: string): void {
    this.#buckets.delete(key);
  }

  /** The bucket with its tokens brought up to `now`; forgotten when full and unlocked. */
  #refilled(key: string, now: number): Bucket | undefined {
    const b = this.#buckets.get(key);
    if (!b) return undefined;
    const { failures, window } = this.options;
    b.tokens = Math.min(failures, b.tokens + ((now - b.at) * failures) / window);
    b.at = now;
    if (b.tokens >= failures && b.lockedUntil <= now) {
      this.#buckets.delete(key);
      return undefined;
    }
    return b;
  }

  /** Drops the keys that failed least recently (the map's first keys). */
  #evict(): void {
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.options.maxKeys) return;
      this.#buckets.delete(key);
    }
  }
}

/**
 * The key an address is limited under. An IPv6 client usually holds a whole /64 and can pick any
 * address in it, so IPv6 addresses count per /64; IPv4-mapped ones count as IPv4.
 */
export function addressKey(address: string): string {
  if (!address.includes(':')) return address;
  const lower = address.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = lower.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

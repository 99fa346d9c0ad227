/**
 * @module login-cache
 * A short positive cache of successful directory logins, so a reconnect storm does not bind
 * every client again. An entry is found by the username and a keyed hash (HMAC-SHA-256 under a
 * key made at start and never stored) of the password: the password itself is never kept, and
 * a different password never matches. Failures are never cached. Entries expire after `ttl`;
 * at most `maxEntries` are kept, the least recently stored dropped first.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

interface Entry<T> {
  readonly proof: Buffer;
  readonly value: T;
  readonly expires: number;
}

export class LoginCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #key = randomBytes(32);

  constructor(
    private readonly ttl: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  #proof(username: string, password: string): Buffer {
    // the username is part of the hash too: one user's entry never vouches for another's password
    return createHmac('sha256', this.#key).update(username).update('\0').update(password).digest();
  }

  /** The value stored for this username and password, while fresh. */
  get(username: string, password: string): T | undefined {
    if (this.ttl <= 0) return undefined;
    const e = this.#entries.get(username);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.#entries.delete(username);
      return undefined;
    }
    return timingSafeEqual(e.proof, this.#proof(username, password)) ? e.value : undefined;
  }

  /** Stores a successful login. */
  set(username: string, password: string, value: T): void {
    if (this.ttl <= 0) return;
    this.#entries.delete(username);
    this.#entries.set(username, { proof: this.#proof(username, password), value, expires: this.now() + this.ttl });
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.maxEntries) break;
      this.#entries.delete(key);
    }
  }

  /** Forgets a user (a failed login with another password: the directory may have changed). */
  delete(username: string): void {
    this.#entries.delete(username);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * @module codes
 * Checking a one-time code (RFC 6238 TOTP through otpauth: HMAC-SHA1, 6 digits, 30-second steps,
 * what every authenticator app does by default) and accepting each code once. A code is taken
 * at most `window` steps before or after now, for clocks that drift. Once a user's code for a
 * step was accepted, no code of that step or an earlier one is accepted for that user again
 * (RFC 6238 §5.2): a code seen on the wire, or typed twice, does not log in a second time.
 */
import { Secret, TOTP } from 'otpauth';

export const PERIOD_SECONDS = 30;
const DIGITS = 6;
const ALGORITHM = 'SHA1';

/** A TOTP for a base32 secret, with the parameters above (`toString()` is its otpauth:// URI). */
export function totpFor(secret: string, label = 'flexscript', issuer = ''): TOTP {
  return new TOTP({ issuer, label, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD_SECONDS, secret: Secret.fromBase32(secret) });
}

/** The time step a code matches (within `window` steps of `now`), or undefined. */
export function matchingStep(secret: string, code: string, now: number, window: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = totpFor(secret).validate({ token: code, timestamp: now, window });
  return delta === null ? undefined : TOTP.counter({ period: PERIOD_SECONDS, timestamp: now }) + delta;
}

/**
 * The last step accepted per user. It holds one entry per user who logged in recently: entries
 * older than any code still valid are dropped when it grows past `maxUsers`, and a full guard
 * of recent entries refuses (never forgets a step a code could still be replayed for).
 */
export class ReplayGuard {
  readonly #last = new Map<string, number>();

  constructor(
    private readonly window: number,
    private readonly maxUsers = 100_000,
  ) {}

  get size(): number {
    return this.#last.size;
  }

  /** Takes a code's step for `user`; false when it (or a later one) was taken before, or the guard is full. */
  take(user: string, step: number, now: number): boolean {
    const last = this.#last.get(user);
    if (last !== undefined && step <= last) return false;
    if (last === undefined && this.#last.size >= this.maxUsers && !this.#prune(now)) return false;
    // re-inserted: the map stays ordered by last login, oldest first
    this.#last.delete(user);
    this.#last.set(user, step);
    return true;
  }

  /** Drops the entries no valid code can match any more; true when room was made. */
  #prune(now: number): boolean {
    const oldest = TOTP.counter({ period: PERIOD_SECONDS, timestamp: now }) - this.window;
    for (const [user, step] of this.#last) if (step < oldest) this.#last.delete(user);
    return this.#last.size < this.maxUsers;
  }
}

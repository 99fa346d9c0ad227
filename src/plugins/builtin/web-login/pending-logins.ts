/**
 * @module pending-logins
 * The one-time state of web logins in progress, each bound to exactly one waiting VPN client.
 * A login has two steps, each usable once: the link the VPN client opens (`/login/ID`), which
 * sends the browser to the provider with a fresh OAuth `state`, and the provider's redirect back
 * with that state. Everything expires with the client's wait; a state seen again after use is
 * refused as a replay. Kept in memory: a restart ends the logins in progress (their clients time
 * out and connect again).
 */
import { randomBytes } from 'node:crypto';

/** The VPN client a login is for. */
export interface Binding {
  readonly instance: string;
  readonly commonName: string;
  /** The client's real address, for `require-same-address`. */
  readonly realAddress?: string;
  readonly realPort?: number;
}

export type LoginResult =
  | { readonly ok: true; readonly username: string; readonly groups: readonly string[]; readonly refreshToken?: string }
  | { readonly ok: false; readonly reason: string /** The provider failed, not the login. */; readonly provider?: boolean };

/** What the callback needs to finish the code exchange. */
export interface StartedLogin {
  readonly binding: Binding;
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** Ties the provider's redirect to the browser that followed the link. */
  readonly browser: string;
  /**
   * Settles the waiting client; only the first result counts. False when the client had its
   * outcome already or stopped waiting (the browser is then told the login did not count).
   */
  settle(result: LoginResult): boolean | Promise<boolean>;
}

export type Step<T> = { readonly ok: true; readonly login: T } | { readonly ok: false; readonly reason: string };

interface Entry {
  readonly id: string;
  readonly binding: Binding;
  readonly expires: number;
  started?: StartedLogin;
  settle(result: LoginResult): boolean;
}

/** URL-safe random text: 128 bits. */
export function randomToken(): string {
  return randomBytes(16).toString('base64url');
}

/** How many used ids and states are remembered to name a replay as such (memory stays bounded). */
const SPENT_MEMORY = 10_000;

/** A login opened for a waiting client: its link id and the outcome it waits for. */
export interface OpenLogin {
  readonly id: string;
  readonly result: Promise<LoginResult>;
  /** Settles it as refused (the client left, the daemon stops). */
  cancel(reason: string, provider?: boolean): void;
  /** Settles it; false when it was settled already. */
  settle(result: LoginResult): boolean;
}

/**
 * Where logins in progress live: this daemon's memory (PendingLogins), or the shared store
 * (SharedLogins). The link step and the callback step are each taken once.
 */
export interface Logins {
  open(binding: Binding, ttlMs: number, expired?: string): OpenLogin | Promise<OpenLogin>;
  start(id: string, browserAddress: string | undefined, sameAddress: boolean): Step<StartedLogin> | Promise<Step<StartedLogin>>;
  finish(
    state: string,
    browser: string | undefined,
    browserAddress: string | undefined,
    sameAddress: boolean,
  ): Step<StartedLogin> | Promise<Step<StartedLogin>>;
  cancelAll(reason: string): void;
}

export class PendingLogins implements Logins {
  readonly #byId = new Map<string, Entry>();
  readonly #byState = new Map<string, Entry>();
  /** Used link ids and states → when they would have expired. */
  readonly #spent = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.#byId.size;
  }

  /**
   * A login for one waiting client, valid for `ttlMs`. `result` settles once: with the login's
   * outcome, on expiry, or with `cancel` (the client left, the daemon stops).
   */
  open(binding: Binding, ttlMs: number, expired = `no login within ${Math.round(ttlMs / 1000)} s`): OpenLogin {
    const id = randomToken();
    let resolve!: (r: LoginResult) => void;
    const result = new Promise<LoginResult>((r) => (resolve = r));
    let settled = false;
    const timer = setTimeout(() => settle({ ok: false, reason: expired }), ttlMs);
    const settle = (r: LoginResult): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      this.#forget(entry);
      resolve(r);
      return true;
    };
    const entry: Entry = { id, binding, expires: this.now() + ttlMs, settle };
    this.#byId.set(id, entry);
    return { id, result, settle, cancel: (reason, provider) => void settle({ ok: false, reason, ...(provider ? { provider } : {}) }) };
  }

  /** The browser followed the link: the login gets its OAuth state, once. */
  start(id: string, browserAddress: string | undefined, sameAddress: boolean): Step<StartedLogin> {
    const entry = this.#byId.get(id);
    if (!entry) return { ok: false, reason: this.#spent.has(id) ? 'this login link was already used' : 'this login link is unknown or has expired' };
    if (entry.started) {
      // a second visit: someone else may hold the link; the client is refused
      entry.settle({ ok: false, reason: 'the login link was opened twice' });
      return { ok: false, reason: 'this login link was already used' };
    }
    if (this.now() > entry.expires) return { ok: false, reason: 'this login link has expired' };
    const mismatch = sameAddress ? addressMismatch(entry.binding, browserAddress) : undefined;
    if (mismatch) {
      entry.settle({ ok: false, reason: mismatch });
      return { ok: false, reason: mismatch };
    }
    const started: StartedLogin = {
      binding: entry.binding,
      state: randomToken(),
      nonce: randomToken(),
      verifier: randomBytes(32).toString('base64url'),
      browser: randomToken(),
      settle: entry.settle,
    };
    entry.started = started;
    this.#spend(id, entry.expires);
    this.#byState.set(started.state, entry);
    return { ok: true, login: started };
  }

  /** The provider sent the browser back: the login is taken, once; a replay is refused. */
  finish(state: string, browser: string | undefined, browserAddress: string | undefined, sameAddress: boolean): Step<StartedLogin> {
    const entry = this.#byState.get(state);
    if (!entry?.started)
      return { ok: false, reason: this.#spent.has(state) ? 'this login was already completed (a replayed callback)' : 'unknown or expired login state' };
    this.#byState.delete(state);
    this.#spend(state, entry.expires);
    const login = entry.started;
    const refuse = (reason: string): Step<StartedLogin> => {
      login.settle({ ok: false, reason });
      return { ok: false, reason };
    };
    if (this.now() > entry.expires) return refuse('the login took too long (its state expired)');
    if (browser !== login.browser) return refuse('the login came back in another browser than the one that started it');
    const mismatch = sameAddress ? addressMismatch(entry.binding, browserAddress) : undefined;
    if (mismatch) return refuse(mismatch);
    return { ok: true, login };
  }

  /** Ends every login in progress (the daemon stops or reloads). */
  cancelAll(reason: string): void {
    for (const e of [...this.#byId.values()]) e.settle({ ok: false, reason });
  }

  #forget(entry: Entry): void {
    this.#byId.delete(entry.id);
    if (entry.started) this.#byState.delete(entry.started.state);
  }

  #spend(key: string, expires: number): void {
    const now = this.now();
    for (const [k, until] of this.#spent) {
      if (until >= now && this.#spent.size < SPENT_MEMORY) break;
      this.#spent.delete(k);
    }
    this.#spent.set(key, expires);
  }
}

/** `::ffff:192.0.2.1` is 192.0.2.1. */
export function plainAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export function addressMismatch(binding: Binding, browserAddress: string | undefined): string | undefined {
  const vpn = plainAddress(binding.realAddress);
  const browser = plainAddress(browserAddress);
  if (vpn === undefined || browser === undefined || vpn !== browser)
    return `the browser (${browser ?? 'unknown address'}) is not at the VPN client's address (${vpn ?? 'unknown'})`;
  return undefined;
}

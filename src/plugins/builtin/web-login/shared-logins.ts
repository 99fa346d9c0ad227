/**
 * @module shared-logins
 * Logins in progress kept in the shared store (PostgreSQL), for several daemons behind one
 * callback URL: the daemon whose VPN client waits (the owner) records the login; the link and
 * the provider's redirect may reach any of the daemons, which takes each step in the store,
 * once, and records the outcome; the owner polls the store for the outcomes of its own logins
 * and settles its waiting clients. A login is bound to the one client its owner opened it for:
 * only the owner takes its outcome, by the link's id, which no other daemon or browser chooses.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Logger, WebLoginOpen, WebLoginStates } from '../../plugin-api.ts';
import {
  addressMismatch,
  type Binding,
  type Logins,
  type LoginResult,
  type OpenLogin,
  PendingLogins,
  randomToken,
  type StartedLogin,
  type Step,
} from './pending-logins.ts';

/** How often the owner asks the store for outcomes, while any of its clients waits. */
const POLL_MS = 400;
/** Each daemon removes expired rows this often (those a stopped daemon left too). */
const SWEEP_MS = 60_000;

/** The browser's tie as stored: a digest, so the row alone cannot pass for the browser. */
const digest = (browser: string): string => createHash('sha256').update(browser).digest('base64url');

export class SharedLogins implements Logins {
  /** This daemon's waiting clients, by link id (their timers and outcomes). */
  readonly #local: PendingLogins;
  readonly #waiting = new Map<string, OpenLogin>();
  /** Names this plugin instance as the owner of the logins it opens. */
  readonly #owner = randomUUID();
  #poll: NodeJS.Timeout | undefined;
  #polling = false;
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    private readonly o: {
      readonly states: WebLoginStates;
      /** The owner's `require-same-address`, stored with each login (whichever daemon the browser reaches applies it). */
      readonly sameAddress: boolean;
      readonly log: Logger;
      readonly now?: () => number;
      readonly pollMs?: number;
    },
  ) {
    this.#local = new PendingLogins(this.#now);
    this.#sweeper = setInterval(() => {
      this.o.states
        .sweep(this.#now())
        .catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'cannot remove expired web logins from the store'));
    }, SWEEP_MS);
    this.#sweeper.unref();
  }

  readonly #now = (): number => (this.o.now ?? Date.now)();

  get size(): number {
    return this.#waiting.size;
  }

  /** Records the login in the store before its link is handed out; rejects when the store cannot. */
  async open(binding: Binding, ttlMs: number, expired?: string): Promise<OpenLogin> {
    const now = this.#now();
    const login = this.#local.open(binding, ttlMs, expired);
    const row: WebLoginOpen = {
      id: login.id,
      owner: this.#owner,
      instance: binding.instance,
      commonName: binding.commonName,
      ...(binding.realAddress !== undefined ? { realAddress: binding.realAddress } : {}),
      ...(binding.realPort !== undefined ? { realPort: binding.realPort } : {}),
      sameAddress: this.o.sameAddress,
      expiresAt: now + ttlMs,
    };
    try {
      await this.o.states.open(row);
    } catch (err) {
      login.cancel('the login could not be recorded');
      throw err;
    }
    this.#waiting.set(login.id, login);
    void login.result.then(() => {
      this.#waiting.delete(login.id);
      // an outcome taken stays (to name a replay); anything else goes with the wait
      this.o.states.end(login.id).catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'cannot remove a web login from the store'));
    });
    this.#poll ??= setInterval(() => void this.#takeOutcomes(), this.o.pollMs ?? POLL_MS);
    return login;
  }

  /** The outcomes other daemons (or this one) recorded for this daemon's waiting clients. */
  async #takeOutcomes(): Promise<void> {
    if (this.#waiting.size === 0) {
      clearInterval(this.#poll);
      this.#poll = undefined;
      return;
    }
    if (this.#polling) return;
    this.#polling = true;
    try {
      for (const { id, outcome } of await this.o.states.take(this.#owner, [...this.#waiting.keys()])) this.#waiting.get(id)?.settle(outcome);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'cannot read web login outcomes from the store');
    } finally {
      this.#polling = false;
    }
  }

  async start(id: string, browserAddress: string | undefined): Promise<Step<StartedLogin>> {
    const browser = randomToken();
    const secrets = { state: randomToken(), nonce: randomToken(), verifier: randomBytes(32).toString('base64url'), browser: digest(browser) };
    const step = await this.o.states.start(id, secrets, this.#now());
    if (!step.ok) {
      if (step.why === 'used') {
        // a second visit: someone else may hold the link; the client is refused
        await this.o.states.settle(id, { ok: false, reason: 'the login link was opened twice' });
        return { ok: false, reason: 'this login link was already used' };
      }
      return { ok: false, reason: step.why === 'expired' ? 'this login link has expired' : 'this login link is unknown or has expired' };
    }
    const row = step.login;
    const mismatch = row.sameAddress ? addressMismatch(row, browserAddress) : undefined;
    if (mismatch) {
      await this.o.states.settle(id, { ok: false, reason: mismatch });
      return { ok: false, reason: mismatch };
    }
    return { ok: true, login: { binding: bindingOf(row), ...secrets, browser, settle: (r) => this.#settle(id, r) } };
  }

  async finish(state: string, browser: string | undefined, browserAddress: string | undefined): Promise<Step<StartedLogin>> {
    const step = await this.o.states.claim(state);
    if (!step.ok)
      return { ok: false, reason: step.why === 'used' ? 'this login was already completed (a replayed callback)' : 'unknown or expired login state' };
    const row = step.login;
    const settle = (r: LoginResult) => this.#settle(row.id, r);
    const refuse = async (reason: string): Promise<Step<StartedLogin>> => {
      await settle({ ok: false, reason });
      return { ok: false, reason };
    };
    if (this.#now() > row.expiresAt) return refuse('the login took too long (its state expired)');
    if (browser === undefined || digest(browser) !== row.browser) return refuse('the login came back in another browser than the one that started it');
    const mismatch = row.sameAddress ? addressMismatch(row, browserAddress) : undefined;
    if (mismatch) return refuse(mismatch);
    return { ok: true, login: { binding: bindingOf(row), state: row.state, nonce: row.nonce, verifier: row.verifier, browser, settle } };
  }

  /** Records the outcome for the owner; the owner's own waiting client hears it at once. */
  async #settle(id: string, result: LoginResult): Promise<boolean> {
    if (!(await this.o.states.settle(id, result))) return false;
    if (this.#waiting.has(id)) void this.#takeOutcomes();
    return true;
  }

  /** Ends every login in progress and stops asking the store (the plugin closes). */
  cancelAll(reason: string): void {
    this.#local.cancelAll(reason);
    clearInterval(this.#poll);
    this.#poll = undefined;
    clearInterval(this.#sweeper);
  }
}

function bindingOf(row: WebLoginOpen): Binding {
  return {
    instance: row.instance,
    commonName: row.commonName,
    ...(row.realAddress !== undefined ? { realAddress: row.realAddress } : {}),
    ...(row.realPort !== undefined ? { realPort: row.realPort } : {}),
  };
}

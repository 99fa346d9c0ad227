/**
 * @module web-sessions
 * Logged-in browsers: a random token in an HttpOnly, SameSite=Strict cookie (Secure over
 * https) names a session held in memory, with its user, role and CSRF token. A session ends at
 * logout, after `idleMs` without use, or when the console restarts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from './console-users.ts';

export interface WebSession {
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  lastSeen: number;
}

/** The most sessions held; the least recently used goes first. */
const MAX_SESSIONS = 10_000;

export const newToken = (): string => randomBytes(32).toString('base64url');

/** Constant-time comparison of two tokens (false for different lengths). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export class WebSessions {
  readonly #sessions = new Map<string, WebSession>();

  constructor(
    private readonly idleMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session; returns its cookie token. */
  start(user: string, role: Role): string {
    const token = newToken();
    this.#sessions.set(token, { user, role, csrf: newToken(), lastSeen: this.now() });
    if (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    return token;
  }

  /** The live session of a cookie token, touched; undefined when unknown or idle too long. */
  get(token: string | undefined): WebSession | undefined {
    if (!token) return undefined;
    const s = this.#sessions.get(token);
    if (!s) return undefined;
    if (this.now() - s.lastSeen > this.idleMs) {
      this.#sessions.delete(token);
      return undefined;
    }
    s.lastSeen = this.now();
    this.#sessions.delete(token);
    this.#sessions.set(token, s);
    return s;
  }

  end(token: string | undefined): void {
    if (token) this.#sessions.delete(token);
  }
}

/**
 * @module web-logins
 * Web logins in progress, kept in the store so that several daemons behind one callback URL
 * share them (a PostgreSQL store): the daemon whose VPN client waits opens the login; whichever
 * daemon the browser reaches takes each step, once, atomically; the waiting daemon picks up the
 * outcome. Each row is bound to one VPN client and lives until its expiry at most.
 *
 * A row's steps: `open` (the link was handed out) → `started` (a browser followed it: the OAuth
 * state, nonce, PKCE verifier and the browser's tie are set) → `claimed` (the provider's
 * redirect came back: the code exchange runs) → `done` (an outcome waits for the owner) →
 * `taken` (the owner has it; the row stays, without its secrets, to name a replay as such).
 * An outcome can also come straight from `open` or `started` (a refused link).
 */

/** The VPN client a login is for. */
export interface WebLoginClient {
  readonly instance: string;
  readonly commonName: string;
  readonly realAddress?: string;
  readonly realPort?: number;
}

/** A login as its owner opens it. */
export interface WebLoginOpen extends WebLoginClient {
  /** The login link's id: random, unguessable. */
  readonly id: string;
  /** The daemon (plugin instance) whose VPN client waits for it: only it takes the outcome. */
  readonly owner: string;
  /** The browser must come from the VPN client's real address (the owner's rule). */
  readonly sameAddress: boolean;
  /** ms since the epoch: after it, no step is taken and the row goes at the next sweep. */
  readonly expiresAt: number;
}

/** What the browser's visit of the link adds, secret until the login ends. */
export interface WebLoginSecrets {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** What ties the provider's redirect to the browser that followed the link (a digest of its cookie). */
  readonly browser: string;
}

/** A finished login, as the owner picks it up. The refresh token is a secret: never logged. */
export type WebLoginOutcome =
  | { readonly ok: true; readonly username: string; readonly groups: readonly string[]; readonly refreshToken?: string }
  | { readonly ok: false; readonly reason: string; readonly provider?: boolean };

/** Why a step was not taken: no such login, its step was taken already, or it expired. */
export type WebLoginMiss = 'unknown' | 'used' | 'expired';

export type WebLoginStep<T> = { readonly ok: true; readonly login: T } | { readonly ok: false; readonly why: WebLoginMiss };

export interface WebLoginStates {
  /** Records a new login (step `open`); durable when the promise resolves. */
  open(login: WebLoginOpen): Promise<void>;
  /** A browser followed the link: sets its secrets, once, unless the login expired by `now`. */
  start(id: string, secrets: WebLoginSecrets, now: number): Promise<WebLoginStep<WebLoginOpen>>;
  /**
   * The provider's redirect with this state came back: the login is claimed, once (a replay is
   * `used`). An expired login is claimed too: the caller refuses it with that reason.
   */
  claim(state: string): Promise<WebLoginStep<WebLoginOpen & WebLoginSecrets>>;
  /** Records the outcome; only the first counts. False when the login has one already or is gone. */
  settle(id: string, outcome: WebLoginOutcome): Promise<boolean>;
  /** The owner takes the outcomes of these logins that have one; each is taken once. */
  take(owner: string, ids: readonly string[]): Promise<{ readonly id: string; readonly outcome: WebLoginOutcome }[]>;
  /** The owner stopped waiting: the login goes, unless its outcome was taken (kept to name a replay). */
  end(id: string): Promise<void>;
  /** Removes the logins that expired before `now`; returns how many. */
  sweep(now: number): Promise<number>;
}

/** A row as both backends read it. */
export interface WebLoginRow {
  readonly id: string;
  readonly owner: string;
  readonly instance: string;
  readonly common_name: string;
  readonly real_address: string | null;
  readonly real_port: number | null;
  readonly same_address: number;
  readonly expires_at: number | string;
  readonly step: string;
  readonly state: string | null;
  readonly nonce: string | null;
  readonly verifier: string | null;
  readonly browser: string | null;
  readonly outcome: string | null;
}

export function openFromRow(r: WebLoginRow): WebLoginOpen {
  return {
    id: r.id,
    owner: r.owner,
    instance: r.instance,
    commonName: r.common_name,
    ...(r.real_address !== null ? { realAddress: r.real_address } : {}),
    ...(r.real_port !== null ? { realPort: Number(r.real_port) } : {}),
    sameAddress: Number(r.same_address) === 1,
    expiresAt: Number(r.expires_at),
  };
}

export function claimedFromRow(r: WebLoginRow): WebLoginOpen & WebLoginSecrets {
  return { ...openFromRow(r), state: r.state ?? '', nonce: r.nonce ?? '', verifier: r.verifier ?? '', browser: r.browser ?? '' };
}

/** Why `start` found nothing to start, from what the row (if any) says. */
export function startMiss(row: Pick<WebLoginRow, 'step' | 'expires_at'> | undefined, now: number): WebLoginMiss {
  if (!row) return 'unknown';
  if (row.step !== 'open') return 'used';
  return Number(row.expires_at) <= now ? 'expired' : 'used';
}

/** An outcome as stored: JSON of what the owner needs. */
export const outcomeColumn = (o: WebLoginOutcome): string => JSON.stringify(o);

export function outcomeFromColumn(text: string): WebLoginOutcome {
  const o = JSON.parse(text) as Record<string, unknown>;
  if (o.ok === true && typeof o.username === 'string' && Array.isArray(o.groups) && o.groups.every((g) => typeof g === 'string'))
    return {
      ok: true,
      username: o.username,
      groups: o.groups as string[],
      ...(typeof o.refreshToken === 'string' ? { refreshToken: o.refreshToken } : {}),
    };
  return {
    ok: false,
    reason: typeof o.reason === 'string' ? o.reason : 'the login ended without a readable outcome',
    ...(o.provider === true ? { provider: true } : {}),
  };
}

/** The steps after which an outcome may still be recorded. */
export const SETTLE_FROM = "('open', 'started', 'claimed')";

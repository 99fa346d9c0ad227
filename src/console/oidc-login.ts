/**
 * @module oidc-login
 * Operators logging in through an OpenID Connect provider. `start` makes one login's secrets
 * (state, nonce, PKCE verifier) and a browser token the console puts in a cookie; `finish` takes
 * the provider's redirect back: the state must be one this console gave out, unused, not
 * expired and come back in the browser that started it; then the code is exchanged (the ID
 * token validated by openid-client) and the groups claim decides the role. Each state works
 * once; a state seen again is refused as a replay. Kept in memory, bounded: a restart ends the
 * logins in progress.
 */
import { randomBytes } from 'node:crypto';
import type { Role } from './console-users.ts';
import type { LoginSecrets } from './oidc-provider.ts';

interface OidcRoles {
  readonly operator: readonly string[];
  readonly viewer: readonly string[];
}

export interface ClaimRules {
  readonly usernameClaim: string;
  readonly groupsClaim: string;
  readonly roles: OidcRoles;
}

/** The provider as the login needs it (OidcProvider; a fake in unit tests). */
export interface LoginProvider {
  readonly issuer: string;
  authorizationUrl(login: LoginSecrets): Promise<URL>;
  exchange(query: URLSearchParams, login: LoginSecrets): Promise<Readonly<Record<string, unknown>>>;
}

export type OidcOutcome =
  | { readonly ok: true; readonly user: string; readonly role: Role; readonly subject: string; readonly groups: readonly string[] }
  | {
      readonly ok: false;
      /** 400: the state is wrong (unknown, expired, replayed, another browser); 403: the provider or the groups refuse; 502: the provider failed. */
      readonly status: 400 | 403 | 502;
      readonly reason: string;
      readonly user?: string;
      readonly subject?: string;
    };

interface Pending extends LoginSecrets {
  readonly browser: string;
  readonly expires: number;
}

/** Logins in progress and used states remembered at most (the oldest go first). */
const MAX_PENDING = 10_000;
const MAX_SPENT = 10_000;
const MAX_NAME = 256;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const token = (bytes = 16) => randomBytes(bytes).toString('base64url');
const usable = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME && !CONTROL.test(v);
/** An OAuth error code is short ASCII; anything else is not shown as given. */
const errorCode = (v: string | null): string => (v && /^[\w.-]{1,64}$/.test(v) ? v : 'an error');

/** Who the claims say the user is, and the role their groups give (undefined: in no mapped group). */
export function roleFromClaims(
  claims: Readonly<Record<string, unknown>>,
  rules: ClaimRules,
): { readonly user?: string; readonly subject?: string; readonly groups: readonly string[]; readonly role?: Role } {
  const subject = usable(claims.sub) ? claims.sub : undefined;
  const named = claims[rules.usernameClaim];
  const user = usable(named) ? named : subject;
  const raw = claims[rules.groupsClaim];
  const groups = [...new Set((Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter(usable))].slice(0, 256);
  const role = groups.some((g) => rules.roles.operator.includes(g)) ? 'operator' : groups.some((g) => rules.roles.viewer.includes(g)) ? 'viewer' : undefined;
  return { user, subject, groups, ...(role ? { role } : {}) };
}

export class OidcLogin {
  readonly #pending = new Map<string, Pending>();
  /** Used states → when they would have expired, to name a replay as such. */
  readonly #spent = new Map<string, number>();

  constructor(
    private readonly o: {
      readonly provider: LoginProvider;
      readonly rules: ClaimRules;
      /** How long a login at the provider may take. */
      readonly ttlMs: number;
      readonly now?: () => number;
    },
  ) {}

  get issuer(): string {
    return this.o.provider.issuer;
  }

  get ttlMs(): number {
    return this.o.ttlMs;
  }

  #now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** A new login: where to send the browser, and the token its cookie carries back. */
  async start(): Promise<{ readonly url: string; readonly browser: string }> {
    const login: Pending = { state: token(), nonce: token(), verifier: token(32), browser: token(32), expires: this.#now() + this.o.ttlMs };
    const url = await this.o.provider.authorizationUrl(login);
    this.#sweep();
    this.#pending.set(login.state, login);
    if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
    return { url: url.href, browser: login.browser };
  }

  /** The provider's redirect back, with the browser token from the cookie. */
  async finish(query: URLSearchParams, browser: string | undefined): Promise<OidcOutcome> {
    const state = query.get('state') ?? '';
    const login = this.#pending.get(state);
    if (!login) {
      const reason = this.#spent.has(state) ? 'this login was already completed (a replayed callback)' : 'unknown or expired login state';
      return { ok: false, status: 400, reason };
    }
    // taken once, whatever happens next
    this.#pending.delete(state);
    this.#spend(state, login.expires);
    if (this.#now() > login.expires) return { ok: false, status: 400, reason: 'the login took too long (its state expired)' };
    if (browser !== login.browser) return { ok: false, status: 400, reason: 'the login came back in another browser than the one that started it' };
    if (query.has('error')) return { ok: false, status: 403, reason: `the identity provider refused the login (${errorCode(query.get('error'))})` };
    let claims: Readonly<Record<string, unknown>>;
    try {
      claims = await this.o.provider.exchange(query, login);
    } catch (err) {
      return { ok: false, status: 502, reason: `the login could not be completed with the identity provider (${(err as Error).message})` };
    }
    const who = roleFromClaims(claims, this.o.rules);
    if (who.user === undefined || who.subject === undefined) return { ok: false, status: 403, reason: 'the ID token names no user (no usable sub claim)' };
    if (!who.role)
      return {
        ok: false,
        status: 403,
        user: who.user,
        subject: who.subject,
        reason: `${who.user} is in none of the groups that may use this console`,
      };
    return { ok: true, user: who.user, role: who.role, subject: who.subject, groups: who.groups };
  }

  /** Drops expired logins. */
  #sweep(): void {
    const now = this.#now();
    for (const [state, p] of this.#pending) {
      if (p.expires >= now) break;
      this.#pending.delete(state);
    }
  }

  #spend(state: string, expires: number): void {
    const now = this.#now();
    for (const [k, until] of this.#spent) {
      if (until >= now && this.#spent.size < MAX_SPENT) break;
      this.#spent.delete(k);
    }
    this.#spent.set(state, expires);
  }
}

/**
 * @module oidc-provider
 * The OpenID Connect provider as the console uses it, through openid-client (certified):
 * discovery (kept, fetched again after a failure), the authorization URL with PKCE, state and
 * nonce, and the code exchange, where openid-client validates the ID token (signature from the
 * provider's keys, issuer, audience, expiry, nonce) and the state.
 */
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import type { ConsoleOidcConfig } from '../config/console-schema.ts';
import { isLoopbackUrl } from '../util/provider-url.ts';

export interface OidcProviderOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly redirectUrl: string;
  readonly scopes: readonly string[];
  /** ms, each request to the provider. */
  readonly timeoutMs: number;
}

/** The secrets of one login in progress. */
export interface LoginSecrets {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
}

/** What `flexscript check` reports of the discovery document. */
export interface DiscoveredProvider {
  readonly issuer: string;
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
}

export class OidcProvider {
  #config: Promise<oidc.Configuration> | undefined;

  constructor(private readonly o: OidcProviderOptions) {}

  get issuer(): string {
    return this.o.issuer;
  }

  /** The provider's configuration, discovered once; a failed discovery is tried again next time. */
  configuration(fresh = false): Promise<oidc.Configuration> {
    if (this.#config && !fresh) return this.#config;
    const url = new URL(this.o.issuer);
    const timeout = Math.max(1, Math.ceil(this.o.timeoutMs / 1000));
    const auth = this.o.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(this.o.clientSecret);
    const found = oidc
      .discovery(url, this.o.clientId, undefined, auth, {
        timeout,
        // plain http only for a provider on this host (the config refuses it elsewhere)
        ...(url.protocol === 'http:' && isLoopbackUrl(url) ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .then((config) => {
        config.timeout = timeout;
        return config;
      });
    this.#config = found;
    found.catch(() => {
      if (this.#config === found) this.#config = undefined;
    });
    return found;
  }

  async discover(): Promise<DiscoveredProvider> {
    const m = (await this.configuration(true)).serverMetadata();
    return { issuer: m.issuer, authorizationEndpoint: m.authorization_endpoint, tokenEndpoint: m.token_endpoint };
  }

  /** Where the browser logs in. */
  async authorizationUrl(login: LoginSecrets): Promise<URL> {
    return oidc.buildAuthorizationUrl(await this.configuration(), {
      redirect_uri: this.o.redirectUrl,
      scope: this.o.scopes.join(' '),
      response_type: 'code',
      state: login.state,
      nonce: login.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(login.verifier),
      code_challenge_method: 'S256',
    });
  }

  /** Exchanges the code of the provider's redirect (`query`) for a validated ID token's claims. */
  async exchange(query: URLSearchParams, login: LoginSecrets): Promise<Readonly<Record<string, unknown>>> {
    const url = new URL(this.o.redirectUrl);
    url.search = query.toString();
    const tokens = await oidc.authorizationCodeGrant(await this.configuration(), url, {
      pkceCodeVerifier: login.verifier,
      expectedState: login.state,
      expectedNonce: login.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the provider returned no ID token');
    return claims as Record<string, unknown>;
  }
}

/** The client secret file's first line. */
function readClientSecret(file: string): string {
  const secret = readFileSync(file, 'utf8').split('\n')[0]!.trim();
  if (secret === '') throw new Error(`${file}: the client secret file is empty`);
  return secret;
}

/** The provider of the config's `auth.oidc`; the client secret is read now, so a missing file fails at start. */
export function providerOf(o: ConsoleOidcConfig): OidcProvider {
  const secretFile = o['client-secret-file'];
  const clientSecret = secretFile === undefined ? undefined : readClientSecret(secretFile);
  return new OidcProvider({
    issuer: o.issuer,
    clientId: o['client-id'],
    ...(clientSecret === undefined ? {} : { clientSecret }),
    redirectUrl: o['redirect-url'],
    scopes: o.scopes,
    timeoutMs: o.timeout,
  });
}

/**
 * @module provider
 * The OpenID Connect provider as the plugin uses it, through openid-client (certified): discovery
 * (kept, and fetched again after a failure), the authorization URL with PKCE, state and nonce,
 * the code exchange with the ID token's validation (signature from the provider's JWKS,
 * issuer, audience, expiry with clock skew, nonce), and the refresh grant.
 */
import * as oidc from 'openid-client';
import { isLoopbackUrl } from '../../../util/provider-url.ts';

export interface ProviderOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  /** Extra authorization request parameters. */
  readonly authParams: Readonly<Record<string, string>>;
  /** ms, each request to the provider. */
  readonly timeout: number;
}

export interface Tokens {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly refreshToken?: string;
}

/** What `flexscript check` reports. */
export interface Discovered {
  readonly issuer: string;
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
  readonly jwksUri?: string;
}

/** After a failed discovery, the next attempt waits this long (a down provider is not hammered). */
const RETRY_DISCOVERY_MS = 5_000;

export class Provider {
  #config: Promise<oidc.Configuration> | undefined;
  #failedAt = 0;

  constructor(private readonly options: ProviderOptions) {}

  /**
   * The provider's configuration, discovered once; `fresh` fetches the discovery document again
   * (each login does, so a provider that went down fails the login at once).
   */
  configuration(fresh = false): Promise<oidc.Configuration> {
    if (this.#config && !fresh) return this.#config;
    if (Date.now() - this.#failedAt < RETRY_DISCOVERY_MS) return Promise.reject(new Error('the provider was unreachable moments ago'));
    const { issuer, clientId, clientSecret, timeout } = this.options;
    const url = new URL(issuer);
    const found = oidc
      .discovery(url, clientId, undefined, clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret), {
        timeout: Math.ceil(timeout / 1000),
        ...(url.protocol === 'http:' && isLoopbackUrl(url) ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .then((config) => {
        config.timeout = Math.ceil(timeout / 1000);
        return config;
      });
    this.#config = found;
    found.catch(() => {
      if (this.#config === found) this.#config = undefined;
      this.#failedAt = Date.now();
    });
    return found;
  }

  async discover(): Promise<Discovered> {
    const m = (await this.configuration(true)).serverMetadata();
    return { issuer: m.issuer, authorizationEndpoint: m.authorization_endpoint, tokenEndpoint: m.token_endpoint, jwksUri: m.jwks_uri };
  }

  /** Where the browser logs in. */
  async authorizationUrl(login: { readonly state: string; readonly nonce: string; readonly verifier: string }): Promise<URL> {
    const config = await this.configuration();
    return oidc.buildAuthorizationUrl(config, {
      // first, so that none of them replaces the parameters below (e.g. prompt=consent or access_type=offline)
      ...this.options.authParams,
      redirect_uri: this.options.redirectUri,
      scope: this.options.scopes.join(' '),
      response_type: 'code',
      state: login.state,
      nonce: login.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(login.verifier),
      code_challenge_method: 'S256',
    });
  }

  /** Exchanges the code the provider sent back; the ID token is validated here. */
  async exchange(callbackUrl: URL, login: { readonly state: string; readonly nonce: string; readonly verifier: string }): Promise<Tokens> {
    const config = await this.configuration();
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: login.verifier,
      expectedState: login.state,
      expectedNonce: login.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the provider returned no ID token');
    return { claims: claims as Record<string, unknown>, ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}) };
  }

  /**
   * The refresh grant: the provider says whether the user's login still holds. Claims come from
   * a new ID token where the provider sends one.
   */
  async refresh(refreshToken: string): Promise<{ readonly claims?: Readonly<Record<string, unknown>>; readonly refreshToken: string }> {
    const config = await this.configuration();
    const tokens = await oidc.refreshTokenGrant(config, refreshToken);
    const claims = tokens.claims();
    return { ...(claims ? { claims: claims as Record<string, unknown> } : {}), refreshToken: tokens.refresh_token ?? refreshToken };
  }
}

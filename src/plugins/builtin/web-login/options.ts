/**
 * @module options
 * The web-login plugin's options: the provider, the callback server, claim mapping and re-auth.
 */
import { isIP } from 'node:net';
import type { z as Zod } from 'zod';
import { duration } from '../../../util/duration.ts';
import { HTTPS_OR_LOOPBACK, isHttpsOrLoopback } from '../../../util/provider-url.ts';

export interface WebLoginOptions {
  readonly issuer: string;
  readonly 'client-id': string;
  readonly 'client-secret-file'?: string;
  readonly scopes: readonly string[];
  readonly 'auth-params': Readonly<Record<string, string>>;
  readonly listen: { readonly address: string; readonly port: number };
  readonly 'tls-cert'?: string;
  readonly 'tls-key'?: string;
  readonly 'public-url': string;
  readonly timeout: number;
  readonly 'username-claim': string;
  readonly 'groups-claim'?: string;
  readonly 'required-groups'?: readonly string[];
  readonly 'required-claims': Readonly<Record<string, string | number | boolean>>;
  readonly 'require-same-address': boolean;
  readonly 'trusted-proxies': readonly string[];
  readonly refresh: boolean;
  readonly 'provider-timeout': number;
}

const httpsUrl = (z: typeof Zod, what: string) => z.string().url().refine(isHttpsOrLoopback, `${what} ${HTTPS_OR_LOOPBACK}`);

export function webLoginSchema(z: typeof Zod) {
  return z
    .object({
      /** The provider's issuer URL; its discovery document is at ISSUER/.well-known/openid-configuration. */
      issuer: httpsUrl(z, 'issuer'),
      'client-id': z.string().min(1).max(256),
      /** A file holding the client secret (first line); without it the client is public (PKCE only). */
      'client-secret-file': z.string().min(1).optional(),
      scopes: z
        .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes'))
        .min(1)
        .max(32)
        .refine((s) => s.includes('openid'), 'scopes must include openid')
        .default(['openid', 'profile', 'email', 'offline_access']),
      /**
       * Extra parameters of the authorization request: `prompt: consent` (panva's oidc-provider)
       * or `access_type: offline` (Google) make those providers give a refresh token.
       */
      'auth-params': z
        .record(
          z
            .string()
            .regex(/^[a-z_]{1,64}$/, 'a parameter name')
            .refine(
              (k) => !['state', 'nonce', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'client_id', 'scope', 'response_type'].includes(k),
              'set by the plugin itself',
            ),
          z.string().max(256),
        )
        .default({}),
      /** Where the daemon serves the login start and the callback. */
      listen: z
        .object({
          address: z.string().refine((a) => isIP(a) !== 0, 'an IPv4 or IPv6 address'),
          port: z.number().int().min(1).max(65535),
        })
        .strict(),
      /** PEM files: the callback server speaks TLS itself (without them, put it behind a reverse proxy that does). */
      'tls-cert': z.string().min(1).optional(),
      'tls-key': z.string().min(1).optional(),
      /**
       * The address browsers reach the callback server at (the reverse proxy's, or this server's
       * with TLS): the login links are PUBLIC-URL/login/ID, the provider redirects to PUBLIC-URL/callback.
       */
      'public-url': httpsUrl(z, 'public-url').refine((u) => !/[?#]/.test(u), 'public-url has no query or fragment'),
      /** How long the VPN client waits for the login; the link and its state expire then. */
      timeout: duration.default(120_000),
      /** The ID token claim that becomes the client's username. */
      'username-claim': z.string().min(1).max(128).default('preferred_username'),
      /** The claim that lists the user's groups (an array of names, or one name). */
      'groups-claim': z.string().min(1).max(128).optional(),
      /** The user must be in at least one of these groups (from groups-claim). */
      'required-groups': z.array(z.string().min(1).max(256)).min(1).optional(),
      /** Claims the ID token must carry with exactly this value (or, for an array claim, contain it). */
      'required-claims': z.record(z.string().min(1).max(128), z.union([z.string(), z.number(), z.boolean()])).default({}),
      /** The browser that logs in must come from the VPN client's real address. */
      'require-same-address': z.boolean().default(false),
      /** Reverse proxies whose X-Forwarded-For is believed (exact addresses); other peers' headers are ignored. */
      'trusted-proxies': z
        .array(z.string().refine((a) => isIP(a) !== 0, 'an IPv4 or IPv6 address'))
        .max(64)
        .default([]),
      /** Re-authentication (renegotiation) by the refresh token, without a browser, while the provider grants it. */
      refresh: z.boolean().default(true),
      /** Time limit of each request to the provider. */
      'provider-timeout': duration.default(10_000),
    })
    .strict()
    .refine((o) => (o['tls-cert'] === undefined) === (o['tls-key'] === undefined), {
      message: 'tls-cert and tls-key go together',
      path: ['tls-key'],
    })
    .refine((o) => o.timeout >= 10_000 && o.timeout <= 600_000, { message: 'timeout must be 10 s to 10 min', path: ['timeout'] })
    .refine((o) => !o['required-groups'] || o['groups-claim'] !== undefined, {
      message: 'required-groups needs groups-claim (the claim that lists the groups)',
      path: ['required-groups'],
    });
}

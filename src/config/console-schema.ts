/**
 * @module console-schema
 * The `console:` section of flexscript.yaml: where `flexscript console` listens, its TLS files,
 * the reverse proxies it believes, who may log in and where it writes its audit log. The daemon
 * ignores the section; `flexscript check` validates it with the rest.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from '../util/duration.ts';
import { HTTPS_OR_LOOPBACK, isHttpsOrLoopback } from '../util/provider-url.ts';

const absolutePath = z.string().startsWith('/', 'must be an absolute path');

const httpsUrl = (what: string) => z.string().url().refine(isHttpsOrLoopback, `${what} ${HTTPS_OR_LOOPBACK}`);

/** The path the console serves the provider's redirect on; a reverse proxy may put a prefix before it. */
const OIDC_CALLBACK_PATH = '/login/oidc/callback';

const groupNames = z.array(z.string().min(1).max(256)).max(256).default([]);

/** Logging in through an OpenID Connect provider; the groups claim decides the role. */
const oidcSchema = z
  .object({
    /** The provider's issuer URL; its discovery document is at ISSUER/.well-known/openid-configuration. */
    issuer: httpsUrl('issuer'),
    'client-id': z.string().min(1).max(256),
    /** A file holding the client secret (first line); without it the client is public (PKCE only). */
    'client-secret-file': absolutePath.optional(),
    /** The console's callback as browsers reach it, registered at the provider: https://HOST/login/oidc/callback. */
    'redirect-url': httpsUrl('redirect-url').refine(
      (u) => new URL(u).pathname.endsWith(OIDC_CALLBACK_PATH) && new URL(u).search === '',
      `redirect-url must end with ${OIDC_CALLBACK_PATH} (the console's callback), without a query`,
    ),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes'))
      .min(1)
      .max(32)
      .refine((s) => s.includes('openid'), 'scopes must include openid')
      .default(['openid', 'profile']),
    /** The claim that names the console user (shown and audited); `sub` when the claim is missing. */
    'username-claim': z.string().min(1).max(64).default('preferred_username'),
    /** The claim listing the user's groups (or roles). */
    'groups-claim': z.string().min(1).max(64).default('groups'),
    /** Which groups make an operator and which a viewer; anyone in neither is refused. */
    roles: z
      .object({ operator: groupNames, viewer: groupNames })
      .strict()
      .refine((r) => r.operator.length + r.viewer.length > 0, 'name at least one group under operator or viewer'),
    /** Each request to the provider (discovery, code exchange, keys). */
    timeout: duration.default(10_000),
  })
  .strict();

/** `HOST:PORT` or `[IPv6]:PORT`. */
const listenAddress = z.string().superRefine((s, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !(port >= 1 && port <= 65535)) ctx.addIssue({ code: 'custom', message: 'expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080' });
  else if (m[1] !== undefined && isIP(host) !== 6) ctx.addIssue({ code: 'custom', message: 'inside [ ] goes an IPv6 address' });
});

export const consoleConfigSchema = z
  .object({
    /** Where the console listens; loopback unless told otherwise. */
    listen: listenAddress.default('127.0.0.1:8080'),
    /** Serve HTTPS with this certificate and key (PEM files). */
    tls: z.object({ cert: absolutePath, key: absolutePath }).strict().optional(),
    /**
     * Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed:
     * the client address for the login limits and the audit log, https for Secure cookies.
     */
    'trusted-proxies': z.array(z.string().refine((a) => isIP(a) !== 0, 'not an IP address')).default([]),
    /** Who may log in: a users file, an OpenID Connect provider, or both (the login page offers both). */
    auth: z
      .object({
        /** `name:hash:role` lines (role viewer or operator), hashes as password-auth's (`flexscript passwd`). */
        'users-file': absolutePath.optional(),
        oidc: oidcSchema.optional(),
      })
      .strict()
      .refine((a) => a['users-file'] !== undefined || a.oidc !== undefined, 'give users-file, oidc or both'),
    /** Every login, failed login and action, one JSON line each (created with mode 0640). */
    'audit-log': absolutePath,
    /** A login lasts this long without use. */
    'session-idle': duration.default(30 * 60_000),
  })
  .strict();

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;
export type ConsoleOidcConfig = z.output<typeof oidcSchema>;

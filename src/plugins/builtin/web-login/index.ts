/**
 * @module web-login
 * Built-in plugin `web-login`: single sign-on through an OpenID Connect provider (Keycloak,
 * Microsoft Entra ID, Google, ...). A connecting client is told to open a login link
 * (`WEB_AUTH::URL`, management mode's `client-pending-auth`, hook mode's `auth_pending_file`)
 * and waits; the browser logs in at the provider (authorization code flow with PKCE, state and
 * nonce) and comes back to the daemon's callback server, which finishes the code exchange. The
 * client is then accepted with the username and groups from the ID token's claims, or denied
 * with the reason. A re-authentication of a live client (renegotiation) is decided by the
 * provider's refresh grant, without a browser, while the refresh token holds.
 *
 * Each login link is bound to exactly one waiting client, usable once, and expires with the
 * client's wait; the provider's redirect is accepted once, in the browser that followed the
 * link, and optionally only from the VPN client's own address. Logins in progress live in this
 * daemon's memory, or, with a PostgreSQL store, in the store: then several daemons serve one
 * callback URL, and a browser may come back to any of them (see shared-logins.ts).
 *
 * @example
 * plugins:
 *   - use: web-login
 *     options:
 *       issuer: https://login.example.com/realms/corp
 *       client-id: openvpn
 *       client-secret-file: /etc/flexscript/oidc-secret
 *       listen: { address: 127.0.0.1, port: 9480 }
 *       public-url: https://vpn.example.com/vpn-login
 *       groups-claim: groups
 *       required-groups: [vpn-users]
 */
import { readFileSync } from 'node:fs';
import { ErrorCode } from '../../../errors.ts';
import { resolve } from 'node:path';
import type { AuthContext, LiveSession, PluginDefinition } from '../../plugin-api.ts';
import { mapClaims, type ClaimRules } from './claims.ts';
import { LoginFlow } from './login-flow.ts';
import { type WebLoginOptions, webLoginSchema } from './options.ts';
import { PendingLogins } from './pending-logins.ts';
import { SharedLogins } from './shared-logins.ts';
import { Provider } from './provider.ts';
import { ReauthRecords } from './reauth-records.ts';
import { WebServer } from './web-server.ts';

/** What the client is told, at most (OpenVPN passes one argument of 255 bytes). */
const MAX_CLIENT_REASON = 200;
/**
 * OpenVPN and the client are told to wait this much longer than the login may take: the client
 * gives up (and connects again) when its announced wait ends, so a refusal at the end of the
 * login's time must still find it waiting. It hears the answer at its next push request (5 s).
 */
const ANSWER_GRACE_S = 10;
/** Sharing logins: the first wait before listening is tried again (it grows with each failure). */
const LISTEN_RETRY_MS = 1_000;

/** The client announced that it can open a web login (`IV_SSO=webauth,...`, with push-peer-info). */
export function opensWebLogins(ivSso: string | undefined): boolean {
  return (ivSso ?? '').split(',').some((m) => m.trim() === 'webauth');
}

const clientReason = (reason: string) => `web login failed: ${reason}`.slice(0, MAX_CLIENT_REASON);

const webLogin: PluginDefinition<WebLoginOptions> = {
  name: 'web-login',
  options: (z) => webLoginSchema(z) as never,

  setup({ options, log, configDir, services }) {
    const publicUrl = options['public-url'].replace(/\/+$/, '');
    const redirectUri = `${publicUrl}/callback`;
    const clientSecret = options['client-secret-file']
      ? readFileSync(resolve(configDir, options['client-secret-file']), 'utf8').split('\n')[0]!.trim()
      : undefined;
    const tls = options['tls-cert'] ? { cert: resolve(configDir, options['tls-cert']), key: resolve(configDir, options['tls-key']!) } : undefined;
    if (tls) {
      // unreadable files fail the setup (and `flexscript check`), not the first client
      readFileSync(tls.cert);
      readFileSync(tls.key);
    }
    const provider = new Provider({
      issuer: options.issuer,
      clientId: options['client-id'],
      ...(clientSecret ? { clientSecret } : {}),
      scopes: options.scopes,
      authParams: options['auth-params'],
      redirectUri,
      timeout: options['provider-timeout'],
    });
    const rules: ClaimRules = {
      usernameClaim: options['username-claim'],
      ...(options['groups-claim'] ? { groupsClaim: options['groups-claim'] } : {}),
      ...(options['required-groups'] ? { requiredGroups: options['required-groups'] } : {}),
      requiredClaims: options['required-claims'],
    };
    const logins = services.webLogins
      ? new SharedLogins({ states: services.webLogins, sameAddress: options['require-same-address'], log })
      : new PendingLogins();
    const records = new ReauthRecords();
    const flow = new LoginFlow({ provider, logins, rules, sameAddress: options['require-same-address'], redirectUri, log });
    const counts = { logins_started: 0, logins_accepted: 0, logins_refused: 0, refreshes_accepted: 0, refreshes_refused: 0 };

    // listening starts with the first client that needs it: `flexscript check` loads the plugin
    // too, and a reload's new instance binds only after the old one let go
    let server: Promise<WebServer> | undefined;
    const callbackServer = (): Promise<WebServer> => {
      server ??= WebServer.start({
        address: options.listen.address,
        port: options.listen.port,
        ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
        basePath: new URL(publicUrl).pathname,
        secureCookie: publicUrl.startsWith('https:'),
        trustedProxies: options['trusted-proxies'],
        flow,
        log,
      }).then(
        (s) => {
          log.info({ address: options.listen.address, port: s.port, tls: tls !== undefined }, 'callback server listening');
          return s;
        },
        (err: unknown) => {
          server = undefined;
          throw err;
        },
      );
      return server;
    };

    // sharing logins, this daemon serves the callbacks of the others' clients too: it listens
    // from the start; a reload's new instance retries until the old one let go of the port
    let closed = false;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    const listenForAll = () => {
      callbackServer().then(
        () => (failures = 0),
        (err: unknown) => {
          if (closed) return;
          failures++;
          if (failures > 1)
            log.warn({ code: ErrorCode.WEB_LOGIN_LISTEN, err: (err as Error).message, failures }, 'the callback server cannot listen yet; retrying');
          retry = setTimeout(listenForAll, Math.min(LISTEN_RETRY_MS * failures, 30_000));
        },
      );
    };
    if (services.webLogins) listenForAll();

    const isLive = (c: { instance: string; commonName: string; realAddress?: string; realPort?: number }, username: string) =>
      services.sessions
        .list()
        .some(
          (s: LiveSession) =>
            s.instance === c.instance &&
            s.commonName === c.commonName &&
            s.realAddress === c.realAddress &&
            s.realPort === c.realPort &&
            s.username === username,
        );

    /** Denies with the reason (the client hears it too), logged with its code. */
    const refuse = (ctx: AuthContext, code: ErrorCode, who: { commonName: string }, reason: string, forClient = reason) => {
      log.warn({ code, commonName: who.commonName.slice(0, 64), reason }, 'web login refused');
      ctx.deny(`web login: ${reason}`, clientReason(forClient));
    };

    return {
      verifiesUsernames: true,
      'user-pass-verify': async (event, ctx) => {
        const connection = { instance: event.instance, commonName: event.commonName, realAddress: event.realAddress, realPort: event.realPort };
        const earlier = records.get(connection);
        if (earlier && isLive(connection, earlier.username) && options.refresh && earlier.refreshToken) {
          // a live client authenticating again: the provider decides, without a browser
          try {
            const r = await provider.refresh(earlier.refreshToken);
            let groups = earlier.groups;
            if (r.claims) {
              const who = mapClaims(r.claims, rules);
              if (!who.ok) throw new Error(who.reason);
              if (who.username !== earlier.username) throw new Error('the refreshed ID token names another user');
              groups = who.groups;
            }
            records.set(connection, { username: earlier.username, groups, refreshToken: r.refreshToken });
            counts.refreshes_accepted++;
            ctx.setUsername(earlier.username);
            ctx.addGroups(...groups);
            log.info({ username: earlier.username }, 're-authenticated by the refresh token');
            return;
          } catch (err) {
            records.delete(connection);
            counts.refreshes_refused++;
            return refuse(ctx, ErrorCode.WEB_LOGIN_REFUSED, event, `the identity provider refused the refresh (${(err as Error).message})`);
          }
        }

        if (!opensWebLogins(event.env.IV_SSO))
          return refuse(
            ctx,
            ErrorCode.WEB_LOGIN_REFUSED,
            event,
            'the VPN client did not announce IV_SSO=webauth (it cannot open a login link)',
            'this VPN client cannot open a login link (no IV_SSO=webauth)',
          );
        try {
          await callbackServer();
        } catch (err) {
          return refuse(
            ctx,
            ErrorCode.WEB_LOGIN_LISTEN,
            event,
            `the callback server cannot listen (${(err as Error).message})`,
            'the login server is not available',
          );
        }
        let login: Awaited<ReturnType<typeof logins.open>>;
        try {
          login = await logins.open(
            { instance: event.instance, commonName: event.commonName, realAddress: event.realAddress, realPort: event.realPort },
            options.timeout,
            `no login within ${Math.round(options.timeout / 1000)} s`,
          );
        } catch (err) {
          return refuse(
            ctx,
            ErrorCode.WEB_LOGIN_STORE,
            event,
            `the login cannot be recorded in the store (${(err as Error).message})`,
            'the login server is not available',
          );
        }
        const abandon = () => login.cancel('the wait for the login was abandoned');
        ctx.signal.addEventListener('abort', abandon, { once: true });
        counts.logins_started++;
        try {
          ctx.pending({ extra: `WEB_AUTH::${publicUrl}/login/${login.id}`, timeout: Math.round(options.timeout / 1000) + ANSWER_GRACE_S });
          // a provider that is down fails the login now, not at the end of the wait
          provider.configuration(true).catch((err: unknown) => login.cancel(`the identity provider is unreachable (${(err as Error).message})`, true));
          const result = await login.result;
          if (!result.ok) {
            counts.logins_refused++;
            return refuse(ctx, result.provider ? ErrorCode.WEB_LOGIN_PROVIDER : ErrorCode.WEB_LOGIN_REFUSED, event, result.reason);
          }
          counts.logins_accepted++;
          records.set(connection, { username: result.username, groups: result.groups, ...(result.refreshToken ? { refreshToken: result.refreshToken } : {}) });
          ctx.setUsername(result.username);
          ctx.addGroups(...result.groups);
        } finally {
          ctx.signal.removeEventListener('abort', abandon);
          login.cancel('the wait ended');
        }
      },
      'client-disconnect': (event) => {
        records.delete(event);
      },
      check: async () => {
        try {
          const d = await provider.discover();
          const found = [
            `issuer ${d.issuer}`,
            `authorization ${d.authorizationEndpoint ?? '(none)'}`,
            `token ${d.tokenEndpoint ?? '(none)'}`,
            `JWKS ${d.jwksUri ?? '(none)'}`,
          ];
          return { ok: true, message: `${found.join('; ')}; callback ${redirectUri} (register it with the provider)` };
        } catch (err) {
          return { ok: false, message: `cannot fetch the discovery document of ${options.issuer}: ${(err as Error).message}` };
        }
      },
      counters: () => ({ ...counts }),
      close: async () => {
        closed = true;
        clearTimeout(retry);
        logins.cancelAll('the daemon stopped or reloaded');
        records.clear();
        const s = await server?.catch(() => undefined);
        await s?.close();
      },
    };
  },
};

export default webLogin;

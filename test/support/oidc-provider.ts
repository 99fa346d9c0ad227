/**
 * A real OpenID Connect provider for the tests: panva's oidc-provider (certified), on loopback,
 * with one confidential test client, users whose ID tokens carry groups, short token lifetimes,
 * and its development login pages (any password; the login name picks the user). Users can be
 * removed while it runs (the provider then refuses their refresh tokens), and it can be stopped
 * and started again on the same port.
 */
import type { Server } from 'node:http';
import type { TestContext } from 'node:test';
import Provider from 'oidc-provider';
import { freeLoopbackPort } from './free-port.ts';

export interface TestUser {
  readonly preferred_username: string;
  readonly groups: readonly string[];
  readonly email_verified: boolean;
}

export const OIDC_CLIENT = { id: 'openvpn', secret: 'test-client-secret-0123456789' };

export interface TestProvider {
  readonly issuer: string;
  readonly port: number;
  /** Users by login name; delete one to make the provider forget it. */
  readonly users: Map<string, TestUser>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startProvider(
  t: TestContext,
  o: { readonly redirectUris: readonly string[]; readonly users: Record<string, TestUser> },
): Promise<TestProvider> {
  const port = await freeLoopbackPort();
  const issuer = `http://127.0.0.1:${port}`;
  const users = new Map(Object.entries(o.users));
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT.id,
        client_secret: OIDC_CLIENT.secret,
        redirect_uris: [...o.redirectUris],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    async findAccount(_ctx, id) {
      const user = users.get(id);
      if (!user) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...user, groups: [...user.groups] }) };
    },
    claims: { openid: ['sub'], profile: ['preferred_username', 'groups', 'email_verified'] },
    // the ID token carries the profile claims (groups), as Keycloak's and Entra's do
    conformIdTokenClaims: false,
    ttl: { AccessToken: 60, IdToken: 60, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600, AuthorizationCode: 60 },
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    cookies: { keys: ['test-cookie-key-0123456789'] },
  });
  // the provider's own warnings about its development defaults are expected here
  provider.on('server_error', () => undefined);
  let server: Server | undefined;
  const handle = {
    issuer,
    port,
    users,
    start: async () => {
      await new Promise<void>((resolve, reject) => {
        const s = provider.listen(port, '127.0.0.1', () => resolve()) as Server;
        s.once('error', reject);
        server = s;
      });
    },
    stop: async () => {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
  };
  await handle.start();
  t.after(() => handle.stop());
  return handle;
}

/**
 * @module console-server
 * `flexscript console`: its own process, never the daemon's. Reads the config's `console:`
 * section, opens the store read-only and the daemon's control socket, and serves the console
 * over HTTP on loopback by default, or HTTPS with a certificate and key.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from '../config/config-schema.ts';
import type { ConsoleConfig, ConsoleOidcConfig } from '../config/console-schema.ts';
import { ConfigError, ErrorCode, FlexscriptError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { openStore } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { AuditLog } from './audit-log.ts';
import { createConsoleApp } from './console-app.ts';
import { ConsoleUsers } from './console-users.ts';
import { controlSocketLink } from './daemon-link.ts';
import { LiveFeed } from './live-feed.ts';
import { OidcLogin } from './oidc-login.ts';
import { providerOf } from './oidc-provider.ts';

/** The provider login of the config; the client secret is read now, so a missing file fails at start. */
function oidcLogin(o: ConsoleOidcConfig): OidcLogin {
  return new OidcLogin({
    provider: providerOf(o),
    rules: { usernameClaim: o['username-claim'], groupsClaim: o['groups-claim'], roles: o.roles },
    // the time at the provider: a person typing a password, perhaps a second factor
    ttlMs: 10 * 60_000,
  });
}

export interface ConsoleOverrides {
  /** HOST:PORT instead of console.listen. */
  readonly listen?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

export interface RunningConsole {
  /** The URL it serves, e.g. http://127.0.0.1:8080/. */
  readonly url: string;
  close(): Promise<void>;
}

function splitListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw new FlexscriptError(ErrorCode.CONSOLE_SETUP, `--listen ${JSON.stringify(listen)}: expected HOST:PORT, e.g. 127.0.0.1:8080`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** The store, read-only: SQLite opened read-only on an existing file, PostgreSQL through the same interface. */
async function openReadOnlyStore(config: Config, log: Logger): Promise<Store | undefined> {
  if (!config.store) return undefined;
  if (config.store.sqlite === undefined) return openStore(config.store, log);
  const { SqliteStore } = await import('../store/sqlite-store.ts');
  return new SqliteStore(config.store.sqlite, { readOnly: true });
}

export async function startConsole(file: string, config: Config, overrides: ConsoleOverrides, log: Logger): Promise<RunningConsole> {
  const section: ConsoleConfig | undefined = config.console;
  if (!section)
    throw new ConfigError([
      { file, line: 1, field: 'console', problem: 'missing: flexscript console needs a console: section (auth.users-file or auth.oidc, audit-log)' },
    ]);
  if ((overrides.tlsCert === undefined) !== (overrides.tlsKey === undefined))
    throw new FlexscriptError(ErrorCode.CONSOLE_SETUP, 'give --tls-cert and --tls-key together');
  const tlsFiles = overrides.tlsCert ? { cert: overrides.tlsCert, key: overrides.tlsKey! } : section.tls;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  try {
    tls = tlsFiles && { cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key) };
  } catch (err) {
    throw new FlexscriptError(ErrorCode.CONSOLE_SETUP, `cannot read the TLS certificate or key: ${(err as Error).message}`, { cause: err });
  }
  const { host, port } = splitListen(overrides.listen ?? section.listen);
  const setup = async <T>(what: string, open: () => Promise<T>): Promise<T> => {
    try {
      return await open();
    } catch (err) {
      throw new FlexscriptError(ErrorCode.CONSOLE_SETUP, `${what}: ${(err as Error).message}`, { cause: err });
    }
  };
  const usersFile = section.auth['users-file'];
  const users = usersFile === undefined ? undefined : await setup(`the users file ${usersFile}`, () => ConsoleUsers.open(usersFile));
  const oidcSection = section.auth.oidc;
  const oidc = oidcSection && (await setup('auth.oidc', async () => oidcLogin(oidcSection)));
  const audit = await setup(`the audit log ${section['audit-log']}`, () => AuditLog.open(section['audit-log']));
  const store = await setup('the store', () => openReadOnlyStore(config, log));
  const daemon = config.control ? controlSocketLink(config.control.socket) : undefined;
  const feed = daemon && new LiveFeed(daemon, log);
  const app = createConsoleApp({
    daemon,
    feed,
    store,
    users,
    oidc,
    audit,
    log,
    trustedProxies: section['trusted-proxies'],
    tls: tls !== undefined,
    idleMs: section['session-idle'],
    plugins: config.plugins,
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port, ...(tls ? { createServer: createHttpsServer, serverOptions: tls } : {}) }, () => resolve(s));
    s.once('error', (err) => reject(new FlexscriptError(ErrorCode.CONSOLE_SETUP, `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })));
  }).catch(async (err: unknown) => {
    await store?.close();
    throw err;
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${shown}:${address.port}/`;
  log.info({ url, store: store?.kind, control: config.control?.socket }, 'console listening');
  return {
    url,
    close: async () => {
      feed?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await store?.close();
    },
  };
}

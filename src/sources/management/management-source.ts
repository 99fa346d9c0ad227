/**
 * @module management-source
 * Management mode: serves one OpenVPN instance through its management interface, so no process
 * is started per event and OpenVPN never waits on a plugin. CONNECT and REAUTH run the same
 * pipeline as hook mode (user-pass-verify first when plugins check passwords, then
 * client-connect) and get exactly one answer; ADDRESS becomes learn-address add; DISCONNECT
 * becomes client-disconnect. On every attach the live sessions are rebuilt from `status 3`.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { errorMessage } from '../../errors.ts';
import type { ManagementInstanceConfig } from '../../config/config-schema.ts';
import type { Dispatcher, SessionKeyOf } from '../../daemon/dispatcher.ts';
import type { Logger } from '../../logger.ts';
import { publishLifecycle } from '../../observe/channels.ts';
import type { Decision } from '../../pipeline/pipeline.ts';
import type { PendingAuth } from '../../plugins/plugin-api.ts';
import { ManagementClient } from '../../openvpn-management/management-client.ts';
import type { ManagementMessage } from '../../openvpn-management/codec.ts';
import type { StatusClient } from '../../openvpn-management/commands.ts';
import { REBUILD_AGAIN_MS } from '../../sessions/session-table.ts';
import { ConnectBurst } from './connect-burst.ts';

/** `auto`: in a burst of connects (see connect-burst.ts); true: always; false: never. */
export type FastPush = boolean | 'auto';

export interface ManagementSourceOptions {
  readonly config: ManagementInstanceConfig;
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
  readonly commandTimeoutMs: number;
  /** When to follow a client-auth with an empty client-pending-auth (see `management.fast-push`). */
  readonly fastPush?: FastPush;
  /** Called after the live sessions were rebuilt from `status` (the daemon then reconciles). */
  readonly onRebuilt?: () => void;
}

type ConnectMessage = Extract<ManagementMessage, { type: 'client-connect' }>;

/** The AUTH_PENDING timeout a fast-push nudge tells the client: OpenVPN's default hand-window. */
const FAST_PUSH_TIMEOUT = 60;

/** Management mode names a session by instance and OpenVPN's client id. */
export const managementSessionKey = (instance: string, cid: number | string): string => `mgmt/${instance}/${cid}`;

export class ManagementSource {
  readonly client: ManagementClient;
  readonly instance: string;
  #closed = false;
  #again: NodeJS.Timeout | undefined;
  readonly #pending = new Set<Promise<void>>();
  readonly #burst = new ConnectBurst();

  private constructor(
    private readonly options: ManagementSourceOptions,
    password: string | undefined,
  ) {
    const { config, log } = options;
    this.instance = config.name;
    this.client = new ManagementClient({
      name: config.name,
      path: config.socket,
      host: config.host,
      port: config.port,
      password,
      log,
      commandTimeoutMs: options.commandTimeoutMs,
    });
    this.client.on('message', (m: ManagementMessage) => this.#onMessage(m));
    this.client.on('attach', () => {
      publishLifecycle(() => ({ what: 'source-attached', source: 'management', instance: this.instance }));
      void this.#rebuild();
      // a client answered just before a restart may only now be applied by OpenVPN: look again
      clearTimeout(this.#again);
      this.#again = setTimeout(() => void this.#rebuild(), REBUILD_AGAIN_MS).unref();
    });
    this.client.on('detach', () => publishLifecycle(() => ({ what: 'source-detached', source: 'management', instance: this.instance })));
    // an OpenVPN on hold (management-hold) answers status only once released
    this.client.on('release', () => void this.#rebuild());
  }

  static async start(options: ManagementSourceOptions): Promise<ManagementSource> {
    const file = options.config['password-file'];
    // OpenVPN reads the first line of its password file; so do we.
    const password = file ? (await readFile(file, 'utf8')).split('\n')[0] : undefined;
    const source = new ManagementSource(options, password);
    source.client.connect();
    return source;
  }

  /** Answers the connects in progress, then detaches. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#again);
    await Promise.allSettled([...this.#pending]);
    await this.client.close();
  }

  #onMessage(m: ManagementMessage): void {
    switch (m.type) {
      case 'client-connect': {
        const p = this.#connect(m);
        this.#pending.add(p);
        void p.finally(() => this.#pending.delete(p));
        break;
      }
      case 'client-address':
        void this.#address(m.cid, m.address);
        break;
      case 'client-disconnect':
        // A client refused or dropped before it was accepted leaves with an empty env; it
        // never had a session and plugins never saw it connect.
        if (!this.options.dispatcher.sessions.get(managementSessionKey(this.instance, m.cid)) && !m.env.common_name) {
          this.options.log.info({ cid: m.cid }, 'client left before it was accepted');
          break;
        }
        void this.#dispatch('client-disconnect', m.cid, m.env);
        break;
      default:
        break;
    }
  }

  #dispatch(
    name: 'client-connect' | 'client-disconnect' | 'user-pass-verify' | 'learn-address',
    cid: number | string,
    env: Record<string, string>,
    extra: { args?: string[]; reauth?: boolean; missed?: boolean; kid?: number } = {},
  ): Promise<Decision> {
    const key = managementSessionKey(this.instance, cid);
    const sessionKey: SessionKeyOf = () => key;
    const { kid, ...rawExtra } = extra;
    // a plugin that needs time: OpenVPN keeps the client waiting instead of timing it out
    const run =
      kid === undefined ? {} : { onPending: (p: PendingAuth) => this.client.clientPendingAuth(Number(cid), kid, p.extra, p.timeout).then(() => undefined) };
    return this.options.dispatcher.handle({ raw: { name, instance: this.instance, source: 'management', env, ...rawExtra }, sessionKey, run });
  }

  /** Disconnects a live client by its OpenVPN client id. */
  async kill(cid: number, message?: string): Promise<void> {
    await this.client.clientKill(cid, message);
  }

  /** Every CONNECT/REAUTH gets exactly one answer, whatever happens inside. */
  async #connect(m: ConnectMessage): Promise<void> {
    const { env } = m;
    const ticket = this.#burst.arrived();
    let decision: Decision;
    try {
      decision = { verdict: 'accept', config: [] };
      if (this.options.dispatcher.pipeline.handles('user-pass-verify')) decision = await this.#dispatch('user-pass-verify', m.cid, env, { kid: m.kid });
      // only user-pass-verify sees the password; client-connect plugins get the env without it
      const { password: _password, ...withoutPassword } = env;
      if (decision.verdict === 'accept') decision = await this.#dispatch('client-connect', m.cid, withoutPassword, { reauth: m.reauth, kid: m.kid });
    } catch (err) {
      decision = { verdict: 'deny', reason: `internal error: ${errorMessage(err)}`, config: [] };
    }
    const burst = this.#burst.answered(ticket);
    try {
      if (decision.verdict === 'accept') {
        const auth = this.client.clientAuth(m.cid, m.kid, [...decision.config]);
        // queued right behind the client-auth: the only command that makes OpenVPN 2.6 process
        // the client now instead of at its next timer; the key is authenticated by then. A
        // reauth of a connected client has no push to wait for.
        const fastPush = this.options.fastPush ?? 'auto';
        const wake =
          !m.reauth && (fastPush === true || (fastPush === 'auto' && burst))
            ? this.client
                .clientPendingAuth(m.cid, m.kid, '', FAST_PUSH_TIMEOUT)
                .catch((err: unknown) => this.options.log.debug({ cid: m.cid, err: errorMessage(err) }, 'fast-push nudge not taken'))
            : undefined;
        await auth;
        await wake;
      } else await this.client.clientDeny(m.cid, m.kid, decision.reason ?? 'denied', decision.clientReason);
    } catch (err) {
      // the client left, or OpenVPN restarted: nothing is waiting for this answer any more
      this.options.log.warn({ cid: m.cid, err: errorMessage(err) }, 'OpenVPN did not take the answer');
    }
  }

  async #address(cid: number, address: string): Promise<void> {
    const session = this.options.dispatcher.sessions.get(managementSessionKey(this.instance, cid));
    // OpenVPN assigns the address after the connect was answered; this is where it is learned
    if (session && isIP(address) !== 0) this.options.dispatcher.sessions.setAddress(session, address);
    await this.#dispatch('learn-address', cid, {}, { args: ['add', address, session?.commonName ?? ''] });
  }

  /** Rebuilds live sessions from `status 3`; sessions whose disconnect was missed are closed. */
  async #rebuild(): Promise<void> {
    const { dispatcher, log } = this.options;
    let clients: StatusClient[];
    try {
      clients = (await this.client.status()).clients;
    } catch (err) {
      // OpenVPN answers so before it serves (on management-hold, or starting): it has no clients
      // yet, and the rebuild runs again when it is released
      if (this.client.held || /not supported by the current daemon mode/.test(errorMessage(err)))
        log.debug('OpenVPN is not serving yet: sessions are rebuilt once it is released');
      else log.error({ err: errorMessage(err) }, 'could not read status to rebuild sessions');
      return;
    }
    const live = new Set<string>();
    let added = 0;
    for (const c of clients) {
      const key = managementSessionKey(this.instance, c.clientId);
      // listed, so not gone: also a client whose accept OpenVPN has not applied yet
      live.add(key);
      // a client still waiting for its answer has no address yet and is no session
      if (!c.virtualAddress && !c.virtualIPv6Address) continue;
      if (dispatcher.sessions.get(key)) continue;
      const [realAddress, realPort] = splitAddress(c.realAddress);
      dispatcher.sessions.add(
        dispatcher.sessions.create(
          key,
          {
            instance: this.instance,
            commonName: c.commonName,
            username: c.username,
            realAddress,
            realPort,
            vpnAddress: c.virtualAddress || undefined,
            vpnAddress6: c.virtualIPv6Address || undefined,
          },
          c.connectedSince * 1000,
        ),
      );
      added++;
    }
    const missed = dispatcher.sessions.list().filter((s) => s.instance === this.instance && s.key.startsWith('mgmt/') && !live.has(s.key));
    for (const s of missed) {
      const cid = s.key.slice(s.key.lastIndexOf('/') + 1);
      await this.#dispatch(
        'client-disconnect',
        cid,
        {
          common_name: s.commonName,
          ...(s.username ? { username: s.username } : {}),
          ...(s.realAddress ? { trusted_ip: s.realAddress } : {}),
          ...(s.realPort ? { trusted_port: String(s.realPort) } : {}),
          ...(s.vpnAddress ? { ifconfig_pool_remote_ip: s.vpnAddress } : {}),
          ...(s.vpnAddress6 ? { ifconfig_pool_remote_ip6: s.vpnAddress6 } : {}),
          time_duration: String(Math.max(0, Math.round((Date.now() - s.connectedAt) / 1000))),
        },
        { missed: true },
      );
    }
    log.info({ live: clients.length, rebuilt: added, closedAsMissed: missed.length }, 'sessions rebuilt from status');
    publishLifecycle(() => ({ what: 'sessions-rebuilt', source: 'management', instance: this.instance, rebuilt: added, closedAsMissed: missed.length }));
    this.options.onRebuilt?.();
  }
}

/** `198.51.100.7:51234`, `[2001:db8::1]:1194` or `udp4:1.2.3.4:5` → address and port. */
export function splitAddress(text: string): [string | undefined, number | undefined] {
  const t = text.replace(/^(udp|tcp)[46]?(-server)?:/, '');
  const m = /^\[?([0-9A-Fa-f:.]+?)\]?(?::(\d+))?$/.exec(t);
  if (!m) return [undefined, undefined];
  // a bare IPv6 address has colons but no port
  if (m[1]!.includes(':') && !t.startsWith('[') && m[2] !== undefined && t.split(':').length > 2) return [t, undefined];
  return [m[1], m[2] === undefined ? undefined : Number(m[2])];
}

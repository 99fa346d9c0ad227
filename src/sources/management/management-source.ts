/**
 * @module management-source
 * Management mode: serves one OpenVPN instance through its management interface, so no process
 * is started per event and OpenVPN never waits on a plugin. CONNECT and REAUTH run the same
 * pipeline as hook mode (user-pass-verify first when plugins check passwords, then
 * client-connect) and get exactly one answer; ADDRESS becomes learn-address add; DISCONNECT
 * becomes client-disconnect. On every attach the live sessions are rebuilt from `status 3`.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../../errors.ts';
import { managementKey, type ConnectionKey, type ListedClient } from '../../core/client.ts';
import type { Challenge, Decision, PendingAuth } from '../../core/decision.ts';
import { base64Text } from '../../events/password-challenge.ts';
import { listedClient } from '../../core/listed-client.ts';
import { REBUILD_AGAIN_MS, type EventSink, type SourceAdapter } from '../../events/source.ts';
import type { ManagementInstanceConfig } from '../../config/config-schema.ts';
import type { Logger } from '../../logger.ts';
import { publishLifecycle } from '../../observe/channels.ts';
import { simpleCommand } from '../../openvpn-management/commands.ts';
import { ManagementClient } from '../../openvpn-management/management-client.ts';
import type { ManagementMessage } from '../../openvpn-management/codec.ts';
import { ConnectBurst } from './connect-burst.ts';

/** `auto`: in a burst of connects (see connect-burst.ts); true: always; false: never. */
export type FastPush = boolean | 'auto';

export interface ManagementSourceOptions {
  readonly config: ManagementInstanceConfig;
  /** Where events go. */
  readonly sink: EventSink;
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

export class ManagementSource implements SourceAdapter {
  readonly client: ManagementClient;
  readonly instance: string;
  #again: NodeJS.Timeout | undefined;
  readonly #pending = new Set<Promise<void>>();
  /** CIDs whose connect OpenVPN announced since the daemon last attached. */
  readonly #announced = new Set<number>();
  /** The pid of the OpenVPN last attached to: a new one numbers its clients from 0 again. */
  #openvpnPid: number | undefined;
  readonly #burst = new ConnectBurst();
  /** Challenges waiting for the client's CR_RESPONSE, by `cid/kid`. */
  readonly #challenges = new Map<string, (answer: string | Error) => void>();

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
      this.#announced.clear();
      void this.#rebuild(true);
      // a client answered just before a restart may only now be applied by OpenVPN: look again
      clearTimeout(this.#again);
      this.#again = setTimeout(() => void this.#rebuild(), REBUILD_AGAIN_MS).unref();
    });
    this.client.on('detach', () => {
      // the OpenVPN that would have carried the answers is gone
      for (const settle of [...this.#challenges.values()]) settle(new Error('OpenVPN detached before the client answered'));
      publishLifecycle(() => ({ what: 'source-detached', source: 'management', instance: this.instance }));
    });
    // an OpenVPN on hold (management-hold) answers status only once released
    this.client.on('release', () => void this.#rebuild());
  }

  /** A source for one instance, its password read, not yet connected. */
  static async open(options: ManagementSourceOptions): Promise<ManagementSource> {
    const file = options.config['password-file'];
    // OpenVPN reads the first line of its password file; so do we.
    const password = file ? (await readFile(file, 'utf8')).split('\n')[0] : undefined;
    return new ManagementSource(options, password);
  }

  /** Opens and starts a source. */
  static async start(options: ManagementSourceOptions): Promise<ManagementSource> {
    const source = await ManagementSource.open(options);
    await source.start();
    return source;
  }

  /** Connects to the management interface; it keeps reconnecting until closed. */
  async start(): Promise<void> {
    this.client.connect();
  }

  /** Answers the connects in progress, then detaches. */
  async close(): Promise<void> {
    clearTimeout(this.#again);
    await Promise.allSettled([...this.#pending]);
    await this.client.close();
  }

  #onMessage(m: ManagementMessage): void {
    switch (m.type) {
      case 'client-connect': {
        this.#announced.add(m.cid);
        const p = this.#connect(m);
        this.#pending.add(p);
        void p.finally(() => this.#pending.delete(p));
        break;
      }
      case 'client-address':
        void this.#address(m.cid, m.address);
        break;
      case 'client-cr-response':
        this.#answered(m.cid, m.kid, m.response);
        break;
      case 'client-disconnect':
        // OpenVPN never reuses a live client's id: a departed one need not be remembered (no growth with churn)
        this.#announced.delete(m.cid);
        for (const [id, settle] of [...this.#challenges]) if (id.startsWith(`${m.cid}/`)) settle(new Error('the client left before it answered'));
        // A client refused or dropped before it was accepted leaves with an empty env; it
        // never had a session and plugins never saw it connect.
        if (!this.options.sink.client(managementKey(this.instance, m.cid)) && !m.env.common_name) {
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
    name: 'client-connect' | 'client-disconnect' | 'user-pass-verify',
    cid: number,
    env: Record<string, string>,
    extra: { reauth?: boolean; kid?: number } = {},
  ): Promise<Decision> {
    const key = managementKey(this.instance, cid);
    const { kid, ...rawExtra } = extra;
    // a plugin that needs time: OpenVPN keeps the client waiting instead of timing it out
    const run =
      kid === undefined
        ? {}
        : {
            onPending: (p: PendingAuth) => this.client.clientPendingAuth(cid, kid, p.extra, p.timeout).then(() => undefined),
            ...(name === 'user-pass-verify' ? { challenge: (c: Challenge, signal: AbortSignal) => this.#challenge(cid, kid, c, signal) } : {}),
          };
    return this.options.sink.handle({ raw: { name, instance: this.instance, source: 'management', env, ...rawExtra }, keyOf: () => key, run });
  }

  /**
   * Puts a question to a client waiting in user-pass-verify (`client-pending-auth ... CR_TEXT`)
   * and resolves with its `>CLIENT:CR_RESPONSE`, decoded. One question per client key at a time.
   */
  #challenge(cid: number, kid: number, c: Challenge, signal: AbortSignal): Promise<string> {
    const id = `${cid}/${kid}`;
    if (this.#challenges.has(id)) return Promise.reject(new Error('a challenge to this client is already waiting for its answer'));
    // CR_TEXT:flags:text; E: the client shows what is typed, R: an answer is required
    const extra = `CR_TEXT:${c.echo === false ? 'R' : 'E,R'}:${c.text.replace(/[\r\n]+/g, ' ')}`;
    return new Promise<string>((resolve, reject) => {
      const settle = (answer: string | Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#challenges.delete(id);
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      };
      const onAbort = () => settle(new Error('the challenge was abandoned'));
      const timer = setTimeout(() => settle(new Error(`no answer to the challenge within ${c.timeout} s`)), c.timeout * 1000);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#challenges.set(id, settle);
      this.client
        .clientPendingAuth(cid, kid, extra, c.timeout)
        .catch((err: unknown) => settle(new Error(`OpenVPN did not take the challenge: ${errorMessage(err)}`)));
    });
  }

  /** A client's CR_RESPONSE: the answer to the challenge waiting for that client key, if any. */
  #answered(cid: number, kid: number, response: string): void {
    const settle = this.#challenges.get(`${cid}/${kid}`);
    if (!settle) {
      this.options.log.info({ cid, kid }, 'a challenge response nobody waits for was dropped');
      return;
    }
    const text = base64Text(response);
    settle(text ?? new Error('the challenge response is not base64 of UTF-8 text'));
  }

  /** Disconnects a live client of this instance; false when the key names no client of it. */
  async kill(key: ConnectionKey, message?: string): Promise<boolean> {
    if (key.via !== 'management' || key.instance !== this.instance) return false;
    await this.client.clientKill(key.cid, message);
    return true;
  }

  /** The clients OpenVPN lists as connected now (`status 3`), with byte counts. */
  async liveClients(): Promise<readonly ListedClient[]> {
    return (await this.client.status()).clients.map((c) => listedClient(this.instance, c, 'management'));
  }

  /** Every CONNECT/REAUTH gets exactly one answer, whatever happens inside. */
  async #connect(m: ConnectMessage): Promise<void> {
    const { env } = m;
    const ticket = this.#burst.arrived();
    let decision: Decision;
    try {
      decision = { verdict: 'accept', config: [] };
      if (this.options.sink.handles('user-pass-verify')) decision = await this.#dispatch('user-pass-verify', m.cid, env, { kid: m.kid });
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
    // OpenVPN assigns the address after the connect was answered; this is where it is learned
    await this.options.sink.addressAssigned(managementKey(this.instance, cid), address);
  }

  /**
   * Rebuilds live sessions from `status 3`; sessions whose disconnect was missed are closed.
   * Right after attaching, a listed client still waiting for its answer whose connect was never
   * announced here came while no daemon was attached (OpenVPN had just started, or the daemon
   * was away): OpenVPN announces a connect only once, so nobody would answer it before the
   * hand-window runs out. It is told to reconnect at once, and its next connect is answered.
   */
  async #rebuild(afterAttach = false): Promise<void> {
    const { sink, log } = this.options;
    // the sessions a restarted OpenVPN took with it count with those the list no longer has
    const endedWithEarlier = afterAttach ? await this.#endSessionsOfEarlierOpenvpn() : 0;
    let clients: readonly ListedClient[];
    try {
      clients = await this.liveClients();
    } catch (err) {
      // OpenVPN answers so before it serves (on management-hold, or starting): it has no clients
      // yet, and the rebuild runs again when it is released
      if (this.client.held || /not supported by the current daemon mode/.test(errorMessage(err)))
        log.debug('OpenVPN is not serving yet: sessions are rebuilt once it is released');
      else log.error({ err: errorMessage(err) }, 'could not read status to rebuild sessions');
      return;
    }
    if (afterAttach) await this.#restartUnannounced(clients);
    const rebuild = await sink.rebuild(this.instance, clients, { closeMissed: 'management' });
    const { rebuilt } = rebuild;
    const closedAsMissed = rebuild.closedAsMissed + endedWithEarlier;
    log.info({ live: clients.length, rebuilt, closedAsMissed }, 'sessions rebuilt from status');
    publishLifecycle(() => ({ what: 'sessions-rebuilt', source: 'management', instance: this.instance, rebuilt, closedAsMissed }));
    this.options.onRebuilt?.();
  }

  async #restartUnannounced(clients: readonly ListedClient[]): Promise<void> {
    const waiting = clients.filter((c) => !c.vpnAddress && !c.vpnAddress6 && c.key.via === 'management' && !this.#announced.has(c.key.cid));
    for (const c of waiting) {
      if (c.key.via !== 'management') continue;
      try {
        await this.client.clientKill(c.key.cid, 'RESTART');
      } catch (err) {
        // it left meanwhile
        this.options.log.debug({ cid: c.key.cid, err: errorMessage(err) }, 'could not restart a waiting client');
      }
    }
    if (waiting.length > 0) this.options.log.info({ clients: waiting.length }, 'clients that connected while no daemon was attached were told to reconnect');
  }

  /**
   * After OpenVPN restarted, none of the clients of the one before is connected, and the new one
   * gives its clients the ids the old ones had: the old sessions end as missed before the new
   * list is read, so a new client is never taken for an old one.
   */
  async #endSessionsOfEarlierOpenvpn(): Promise<number> {
    let pid: number | undefined;
    try {
      const reply = await this.client.command(simpleCommand('pid'));
      const found = reply.type === 'success' ? /pid=(\d+)/.exec(reply.text) : null;
      pid = found ? Number(found[1]) : undefined;
    } catch (err) {
      this.options.log.debug({ err: errorMessage(err) }, 'could not ask OpenVPN for its pid');
    }
    const before = this.#openvpnPid;
    if (pid !== undefined) this.#openvpnPid = pid;
    if (pid === undefined || before === undefined || pid === before) return 0;
    // clients announced since the attach are the new OpenVPN's: kept
    const kept = [...this.#announced].flatMap((cid) => {
      const live = this.options.sink.client(managementKey(this.instance, cid));
      return live ? [{ ...live, bytesReceived: 0, bytesSent: 0 }] : [];
    });
    const { closedAsMissed } = await this.options.sink.rebuild(this.instance, kept, { closeMissed: 'management' });
    if (closedAsMissed > 0) this.options.log.info({ pid, closedAsMissed }, 'OpenVPN was restarted; the sessions of the one before ended as missed');
    return closedAsMissed;
  }
}

/**
 * @module dispatcher
 * The one way an event goes through the daemon, whichever source it came from: parse and check
 * it, bound how many run at once, tie it to its client session, run the pipeline, log the
 * decision. Sources only translate their wire format to and from this.
 */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { errorMessage } from '../errors.ts';
import type { AnyEvent, ClientConnectEvent, ClientDisconnectEvent } from '../events/event-map.ts';
import { parseEvent, type RawEvent } from '../events/parse-event.ts';
import type { Logger } from '../logger.ts';
import { decisions, type DecisionMessage } from '../observe/channels.ts';
import type { Decision, Pipeline, RunOptions } from '../pipeline/pipeline.ts';
import { SessionTable, type Session, type SessionInfo } from '../sessions/session-table.ts';
import { Semaphore } from './semaphore.ts';

/** Names the client session an event belongs to, unique while the client is connected. */
export type SessionKeyOf = (event: ClientConnectEvent | ClientDisconnectEvent) => string;

export interface DispatchInput {
  readonly raw: RawEvent;
  readonly sessionKey: SessionKeyOf;
  readonly run?: RunOptions;
}

/** A pipeline and the number of events still running through it (for a clean swap on reload). */
class Generation {
  inflight = 0;
  #idle: (() => void) | undefined;
  /** Some plugin checks credentials on user-pass-verify: its accept verifies the username. */
  readonly verifiesUsernames: boolean;
  constructor(readonly pipeline: Pipeline) {
    this.verifiesUsernames = pipeline.plugins.some((p) => p.instance.verifiesUsernames === true && typeof p.instance['user-pass-verify'] === 'function');
  }
  enter(): void {
    this.inflight++;
  }
  leave(): void {
    if (--this.inflight === 0) this.#idle?.();
  }
  idle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => (this.#idle = r));
  }
}

/** The few fields of an event worth a log line (never the password). */
function details(e: AnyEvent): Record<string, unknown> {
  switch (e.name) {
    case 'client-connect':
      return {
        username: e.username,
        // a username the client sent that nobody verified: data for the operator, not identity
        claimedUsername: e.username === undefined ? e.env.username || undefined : undefined,
        realAddress: e.realAddress,
        realPort: e.realPort,
        vpnAddress: e.vpnAddress,
        vpnAddress6: e.vpnAddress6,
        reauth: e.reauth || undefined,
      };
    case 'client-disconnect':
      return {
        username: e.username,
        vpnAddress: e.vpnAddress,
        bytesReceived: e.bytesReceived,
        bytesSent: e.bytesSent,
        duration: e.duration,
        missed: e.missed || undefined,
      };
    case 'learn-address':
      return { operation: e.operation, address: e.address };
    case 'user-pass-verify':
      return { username: e.username, realAddress: e.realAddress };
    case 'tls-verify':
      return { depth: e.depth };
    default:
      return {};
  }
}

function sessionInfo(e: ClientConnectEvent | ClientDisconnectEvent): SessionInfo {
  return {
    instance: e.instance,
    commonName: e.commonName,
    username: e.username,
    realAddress: e.realAddress,
    realPort: e.realPort,
    vpnAddress: e.vpnAddress,
    vpnAddress6: e.vpnAddress6,
  };
}

/**
 * The addresses an accepted client-connect answer gives the client: `ifconfig-push ADDR ...` and
 * `ifconfig-ipv6-push ADDR/BITS ...`. OpenVPN uses these instead of the pool addresses in the
 * connect's env, and the last line of each kind wins, as when OpenVPN reads a client config file.
 */
export function pushedAddresses(config: readonly string[]): { vpnAddress?: string; vpnAddress6?: string } {
  const found: { vpnAddress?: string; vpnAddress6?: string } = {};
  for (const line of config) {
    if (!line.includes('ifconfig')) continue;
    const [directive, value = ''] = line.trim().split(/\s+/);
    if (directive === 'ifconfig-push' && isIPv4(value)) found.vpnAddress = value;
    if (directive === 'ifconfig-ipv6-push') {
      const address = value.replace(/\/\d+$/, '');
      // canonical, as OpenVPN writes it in learn-address and >CLIENT:ADDRESS
      if (isIPv6(address)) found.vpnAddress6 = new SocketAddress({ address, family: 'ipv6' }).address;
    }
  }
  return found;
}

/** How many denied connects are remembered, to recognise their disconnects. */
const DENIED_MEMORY = 10_000;
/** How many usernames verified at user-pass-verify wait at most for their client-connect. */
const VERIFIED_MEMORY = 10_000;
/** A verified username not claimed by a client-connect within this time is forgotten. */
const VERIFIED_TTL_MS = 10 * 60_000;

export interface IdentityOptions {
  /**
   * OpenVPN itself verifies every username before client-connect (an auth-user-pass-verify
   * script or auth plugin that is not this daemon's): the username a client-connect carries is
   * then identity. Off by default: only a plugin that verifies usernames makes one.
   */
  readonly usernamesVerifiedByOpenvpn?: boolean;
}

/**
 * Ties a user-pass-verify to the client-connect of the same client: the instance and the
 * client's real address and port, the same in both events and unique among the clients of one
 * server (in hook mode they are separate hook runs; the common name can change between them
 * with username-as-common-name).
 */
function authLink(e: { readonly instance: string; readonly realAddress?: string; readonly realPort?: number }): string | undefined {
  return e.realAddress === undefined || e.realPort === undefined ? undefined : `${e.instance}\0${e.realAddress}\0${e.realPort}`;
}

export class Dispatcher {
  readonly sessions = new SessionTable();
  /**
   * OpenVPN runs client-disconnect even for a client whose deferred connect was denied; such a
   * client never had a session, and plugins must not see it leave.
   */
  readonly #denied = new Set<string>();
  /** Auth link (see authLink) → the username a verifying plugin accepted, and when. */
  readonly #verified = new Map<string, { readonly username: string; readonly at: number }>();
  #current: Generation;
  readonly #slots: Semaphore;
  #identity: IdentityOptions;

  constructor(
    pipeline: Pipeline,
    private readonly log: Logger,
    concurrency: number,
    identity: IdentityOptions = {},
  ) {
    this.#current = new Generation(pipeline);
    this.#slots = new Semaphore(concurrency);
    this.#identity = identity;
    this.#trustRestored();
  }

  /** Changes who verifies usernames (a reload of the config). */
  set identity(identity: IdentityOptions) {
    this.#identity = identity;
    this.#trustRestored();
  }

  /**
   * Usernames in OpenVPN's list of live clients were all verified when every connect had to
   * pass a plugin that verifies them, or OpenVPN's own check.
   */
  #trustRestored(): void {
    this.sessions.restoredUsernamesVerified = this.#identity.usernamesVerifiedByOpenvpn === true || this.#current.verifiesUsernames;
  }

  get pipeline(): Pipeline {
    return this.#current.pipeline;
  }

  /** Events waiting for a slot: the queue depth under a storm. */
  get queued(): number {
    return this.#slots.waiting;
  }

  /** Installs a new pipeline; resolves with the old one once no event runs through it any more. */
  async swap(pipeline: Pipeline): Promise<Pipeline> {
    const old = this.#current;
    this.#current = new Generation(pipeline);
    this.#trustRestored();
    await old.idle();
    return old.pipeline;
  }

  /** Handles one event. Never throws: a malformed event or a failure is a deny decision. */
  handle(input: DispatchInput): Promise<Decision> {
    // traced on the decision channel; nobody watching: no message is made
    if (!decisions.hasSubscribers) return this.#handle(input, undefined);
    const message: DecisionMessage = { event: input.raw.name, instance: input.raw.instance, source: input.raw.source };
    return decisions.tracePromise(() => this.#handle(input, message), message);
  }

  async #handle({ raw, sessionKey, run = {} }: DispatchInput, message: DecisionMessage | undefined): Promise<Decision> {
    let event: AnyEvent;
    try {
      event = parseEvent(raw);
    } catch (err) {
      this.log.error({ event: raw.name, instance: raw.instance, err: errorMessage(err) }, 'malformed event refused');
      const refused: Decision = { verdict: 'deny', reason: `malformed event: ${errorMessage(err)}`, config: [] };
      if (message) Object.assign(message, { verdict: refused.verdict, reason: refused.reason, unhandled: 'malformed' });
      return refused;
    }
    const started = performance.now();
    const release = await this.#slots.acquire();
    const gen = this.#current;
    gen.enter();
    try {
      return await this.#run(gen, event, sessionKey, started, run, message);
    } catch (err) {
      // the pipeline itself never throws; this guards the daemon against its own bugs
      this.log.error({ event: event.name, err: errorMessage(err) }, 'event failed');
      const failed: Decision = { verdict: 'deny', reason: `internal error: ${errorMessage(err)}`, config: [] };
      if (message) Object.assign(message, { verdict: failed.verdict, reason: failed.reason, unhandled: 'internal-error' });
      return failed;
    } finally {
      gen.leave();
      release();
    }
  }

  /**
   * Reports an accepted client's VPN addresses as learn-address adds, as management mode does
   * with >CLIENT:ADDRESS: hook mode with `learn-address: connect` runs no learn-address hook.
   * `raw` is the client-connect that was accepted; its session is gone if the client left.
   */
  async learnAtConnect(raw: RawEvent, sessionKey: SessionKeyOf): Promise<void> {
    let event: AnyEvent;
    try {
      event = parseEvent(raw);
    } catch {
      return; // handle() refused and logged it already
    }
    if (event.name !== 'client-connect') return;
    const session = this.sessions.get(sessionKey(event));
    for (const address of [session?.vpnAddress, session?.vpnAddress6]) {
      if (!address) continue;
      await this.handle({
        raw: { name: 'learn-address', instance: raw.instance, source: raw.source, env: {}, args: ['add', address, session!.commonName] },
        sessionKey,
      });
    }
  }

  /**
   * Was the username this client-connect carries verified for this client? By OpenVPN, where
   * the config says so, or by a verifying plugin at this client's user-pass-verify (taken
   * once: the next connect from the same address and port must be verified anew).
   */
  #usernameVerified(event: ClientConnectEvent): boolean {
    const claimed = event.env.username;
    const link = authLink(event);
    const verified = link === undefined ? undefined : this.#verified.get(link);
    if (link !== undefined) this.#verified.delete(link);
    if (!claimed) return false;
    if (this.#identity.usernamesVerifiedByOpenvpn === true) return true;
    return verified !== undefined && verified.username === claimed && Date.now() - verified.at <= VERIFIED_TTL_MS;
  }

  /** Notes the outcome of a user-pass-verify for the client-connect that follows it. */
  #noteVerified(gen: Generation, event: AnyEvent & { name: 'user-pass-verify' }, decision: Decision): void {
    const link = authLink(event);
    if (link === undefined) return;
    this.#verified.delete(link);
    if (decision.verdict !== 'accept' || !gen.verifiesUsernames || event.username === '') return;
    this.#verified.set(link, { username: event.username, at: Date.now() });
    // a Map iterates in insertion order: drop the oldest
    if (this.#verified.size > VERIFIED_MEMORY) this.#verified.delete(this.#verified.keys().next().value!);
  }

  async #run(gen: Generation, event: AnyEvent, sessionKey: SessionKeyOf, started: number, run: RunOptions, message?: DecisionMessage): Promise<Decision> {
    const { pipeline } = gen;
    let session: Session | undefined;
    let decision: Decision;
    switch (event.name) {
      case 'client-connect': {
        // a username is identity only once verified; the claim stays in env
        if (this.#usernameVerified(event)) event = { ...event, username: event.env.username };
        const key = sessionKey(event);
        const live = this.sessions.get(key);
        session = event.reauth && live ? live : this.sessions.create(key, sessionInfo(event), (event.time ?? Date.now() / 1000) * 1000, true);
        decision = await pipeline.run(event, session, run);
        // a live client keeps its address on reauth; a new one gets the answer's, before its
        // record is made and learn-address looks it up by that address
        if (decision.verdict === 'accept' && session !== live) {
          const pushed = pushedAddresses(decision.config);
          if (pushed.vpnAddress) this.sessions.setAddress(session, pushed.vpnAddress);
          if (pushed.vpnAddress6) this.sessions.setAddress(session, pushed.vpnAddress6);
        }
        if (pipeline.settles) decision = await pipeline.settle(event, decision, session);
        if (decision.verdict === 'accept') this.sessions.add(session);
        else this.#rememberDenied(key);
        break;
      }
      case 'client-disconnect': {
        const key = sessionKey(event);
        if (!this.sessions.get(key) && this.#denied.delete(key)) {
          this.log.info({ event: event.name, instance: event.instance, commonName: event.commonName }, 'denied client left');
          if (message) Object.assign(message, { commonName: event.commonName, verdict: 'accept', unhandled: 'denied-client-left' });
          return { verdict: 'accept', config: [] };
        }
        const link = authLink(event);
        if (link !== undefined) this.#verified.delete(link);
        // a session the daemon never saw (it restarted): plugins still get the event, with the
        // username as far as it can be trusted, as for sessions rebuilt from OpenVPN's list
        const known = this.sessions.get(key);
        const username = known ? known.username : this.sessions.restoredUsernamesVerified ? event.env.username || undefined : undefined;
        if (username !== event.username) event = { ...event, username };
        session = known ?? this.sessions.create(key, sessionInfo(event), Date.now() - event.duration * 1000, true);
        decision = await pipeline.run(event, session);
        this.sessions.remove(key);
        break;
      }
      case 'learn-address':
        session = this.sessions.byAddress(event.instance, event.address);
        decision = await pipeline.run(event, session);
        break;
      case 'down': {
        decision = await pipeline.run(event, undefined, run);
        // OpenVPN stopped or restarts: none of its clients is connected any more
        const gone = this.sessions.list().filter((s) => s.instance === event.instance);
        for (const s of gone) this.sessions.remove(s.key);
        if (gone.length > 0) this.log.info({ instance: event.instance, sessions: gone.length }, 'OpenVPN went down; its sessions ended');
        break;
      }
      case 'tls-verify':
      case 'user-pass-verify':
        decision = await pipeline.run(event, undefined, run);
        if (pipeline.settles) decision = await pipeline.settle(event, decision, undefined);
        if (event.name === 'user-pass-verify') this.#noteVerified(gen, event, decision);
        break;
      default:
        decision = await pipeline.run(event, undefined, run);
    }
    this.#logDecision(event, decision, performance.now() - started, session, message);
    return decision;
  }

  #rememberDenied(key: string): void {
    this.#denied.add(key);
    // a Set iterates in insertion order: drop the oldest
    if (this.#denied.size > DENIED_MEMORY) this.#denied.delete(this.#denied.values().next().value!);
  }

  #logDecision(event: AnyEvent, decision: Decision, ms: number, session: Session | undefined, message: DecisionMessage | undefined): void {
    const who = 'commonName' in event ? event.commonName : session?.commonName;
    // ms: time inside the daemon, queue wait included (what the benchmark's latency reports)
    const fields = {
      event: event.name,
      instance: event.instance,
      commonName: who,
      verdict: decision.verdict,
      ms: Math.round(ms * 100) / 100,
      ...details(event),
    };
    // the addresses the client gets, which the answer may have changed
    if (event.name === 'client-connect' && session) Object.assign(fields, { vpnAddress: session.vpnAddress, vpnAddress6: session.vpnAddress6 });
    // the same fields for watchers (details() never holds the password)
    if (message)
      Object.assign(message, fields, { reason: decision.reason, plugin: decision.decidedBy, config: decision.config.length ? decision.config : undefined });
    if (decision.verdict === 'deny') {
      this.log.warn({ ...fields, reason: decision.reason, plugin: decision.decidedBy }, `${event.name} denied`);
    } else {
      this.log.info({ ...fields, config: decision.config.length ? decision.config : undefined }, event.name);
    }
  }
}

/**
 * @module dispatcher
 * The one way an event goes through the daemon, whichever source it came from: parse and check
 * it, bound how many run at once, tie it to its client session, run the pipeline, log the
 * decision. Sources only translate their wire format to and from this.
 */
import { isIP } from 'node:net';
import { connectionString, hookKey, keyString, type Client, type ClientInfo, type ConnectionKey, type ListedClient } from '../core/client.ts';
import type { Decision, RunOptions } from '../core/decision.ts';
import type { EventSink, KeyOf, RawInput, RebuildOptions, RebuildResult } from '../events/source.ts';
import { errorMessage } from '../errors.ts';
import { learnAddressAdd, missedDisconnect } from '../events/daemon-events.ts';
import type { AnyEvent, ClientConnectEvent, ClientDisconnectEvent, EventName, EventSource } from '../events/event-map.ts';
import { parseEvent } from '../events/parse-event.ts';
import type { Logger } from '../logger.ts';
import { decisions, type DecisionMessage } from '../observe/channels.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { groupRules, type GroupRules } from '../sessions/group-rules.ts';
import { joinGroups, SessionTable, setGroups, type Session } from '../sessions/session-table.ts';
import type { SessionRecord } from '../store/store.ts';
import { Semaphore } from '../util/semaphore.ts';

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

function clientInfo(e: ClientConnectEvent | ClientDisconnectEvent): ClientInfo {
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

/** Events keyed by a connection come from the source that names connections so. */
const sourceOf = (key: ConnectionKey): EventSource => key.via;

/** How many denied connects are remembered, to recognise their disconnects. */
const DENIED_MEMORY = 10_000;
/** How many usernames verified at user-pass-verify wait at most for their client-connect. */
const VERIFIED_MEMORY = 10_000;
/** Ended connections remembered against stale lists of clients (see #ended). */
const ENDED_MEMORY = 10_000;

/** A verified username not claimed by a client-connect within this time is forgotten. */
const VERIFIED_TTL_MS = 10 * 60_000;

export interface IdentityOptions {
  /**
   * OpenVPN itself verifies every username before client-connect (an auth-user-pass-verify
   * script or auth plugin that is not this daemon's): the username a client-connect carries is
   * then identity. Off by default: only a plugin that verifies usernames makes one.
   */
  readonly usernamesVerifiedByOpenvpn?: boolean;
  /** The operator's static group rules (the config's `groups:`). */
  readonly groups?: GroupRules;
}

/** What a client-connect takes over from its user-pass-verify. */
interface Verified {
  /** The username this client-connect carries is identity. */
  readonly verified: boolean;
  /** The verified username, where a plugin named one other than the client's (a provider's claim). */
  readonly username?: string;
  /**
   * The groups the verifying plugins put the client in there; undefined where none of them
   * decided any (a plugin that calls addGroups, even with none, decides them).
   */
  readonly groups?: readonly string[];
}

const UNVERIFIED: Verified = { verified: false };

/** What the store keeps of an open session that a rebuilt one can take back. */
export type RecalledSession = Pick<SessionRecord, 'id' | 'commonName' | 'username' | 'realAddress' | 'realPort' | 'startedAt' | 'groups'>;

/**
 * Ties a user-pass-verify to the client-connect of the same client: the instance and the
 * client's real address and port, the same in both events and unique among the clients of one
 * server (in hook mode they are separate hook runs; the common name can change between them
 * with username-as-common-name).
 */
function authLink(e: { readonly instance: string; readonly realAddress?: string; readonly realPort?: number }): string | undefined {
  return e.realAddress === undefined || e.realPort === undefined ? undefined : `${e.instance}\0${e.realAddress}\0${e.realPort}`;
}

export class Dispatcher implements EventSink {
  /** The live sessions. Only the dispatcher changes them; sources read them through EventSink. */
  readonly sessions = new SessionTable();
  /**
   * OpenVPN runs client-disconnect even for a client whose deferred connect was denied; such a
   * client never had a session, and plugins must not see it leave. Connection keys, as strings.
   */
  readonly #denied = new Set<string>();
  /**
   * Connections that ended, and when (ms): a list of clients read before a client left (hook
   * mode's status file is rewritten only every few seconds) must not bring it back. Bounded.
   */
  readonly #ended = new Map<string, number>();
  /** Auth link (see authLink) → the username the client sent, the one a verifying plugin accepted, the groups it gave, and when. */
  readonly #verified = new Map<string, { readonly claimed: string; readonly username: string; readonly groups?: readonly string[]; readonly at: number }>();
  /**
   * The groups a live session's latest authentication gave: a re-authentication replaces these
   * and only these (the rules' and connect plugins' stay). Weak: it goes with the session.
   */
  readonly #authGroups = new WeakMap<Session, readonly string[]>();
  /** The groups the operator's static rules put a client in. */
  #rules: (who: Pick<Client, 'commonName' | 'username'>) => string[];
  /** The names the static rules give: decided by the rules alone, never taken back from a record. */
  #ruleNames: ReadonlySet<string>;
  #current: Generation;
  readonly #slots: Semaphore;
  #identity: IdentityOptions;
  /**
   * The open session records of an instance (set when there is a store): a session rebuilt after
   * a daemon restart takes back the verified username and the groups its record holds.
   */
  recall: ((instance: string) => Promise<readonly RecalledSession[]>) | undefined;
  /**
   * A live client's re-authentication left it in other groups: what follows from groups (firewall
   * sets, routes, its record) must follow (set by the daemon).
   */
  groupsChanged: ((session: Session, before: readonly string[]) => void) | undefined;

  constructor(
    pipeline: Pipeline,
    private readonly log: Logger,
    concurrency: number,
    identity: IdentityOptions = {},
  ) {
    this.#current = new Generation(pipeline);
    this.#slots = new Semaphore(concurrency);
    this.#identity = identity;
    this.#rules = groupRules(identity.groups);
    this.#ruleNames = new Set(Object.keys(identity.groups ?? {}));
    this.#trustRestored();
  }

  /** Changes who verifies usernames (a reload of the config). */
  set identity(identity: IdentityOptions) {
    this.#identity = identity;
    this.#rules = groupRules(identity.groups);
    this.#ruleNames = new Set(Object.keys(identity.groups ?? {}));
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

  handles(name: EventName): boolean {
    return this.pipeline.handles(name);
  }

  client(key: ConnectionKey): Client | undefined {
    return this.sessions.get(key);
  }

  clients(): readonly Client[] {
    return this.sessions.list();
  }

  /** Handles one event as OpenVPN gave it. Never throws: a malformed event or a failure is a deny decision. */
  async handle({ raw, keyOf, run = {} }: RawInput): Promise<Decision> {
    let event: AnyEvent;
    try {
      event = parseEvent(raw);
    } catch (err) {
      this.log.error({ event: raw.name, instance: raw.instance, err: errorMessage(err) }, 'malformed event refused');
      const refused: Decision = { verdict: 'deny', reason: `malformed event: ${errorMessage(err)}`, config: [] };
      if (decisions.hasSubscribers) {
        const message: DecisionMessage = {
          event: raw.name,
          instance: raw.instance,
          source: raw.source,
          verdict: refused.verdict,
          reason: refused.reason,
          unhandled: 'malformed',
        };
        await decisions.tracePromise(async () => refused, message);
      }
      return refused;
    }
    if (event.name === 'client-connect' && !event.reauth) await this.#endEarlierHolder(this.#keyOf(keyOf, event));
    return this.#dispatch(event, keyOf, run, performance.now());
  }

  /** Runs a typed event, traced on the decision channel (no message is made while nobody watches). Never throws. */
  #dispatch(event: AnyEvent, keyOf: KeyOf | undefined, run: RunOptions, started: number): Promise<Decision> {
    if (!decisions.hasSubscribers) return this.#traced(event, keyOf, run, started, undefined);
    const message: DecisionMessage = { event: event.name, instance: event.instance, source: event.source };
    return decisions.tracePromise(() => this.#traced(event, keyOf, run, started, message), message);
  }

  async #traced(event: AnyEvent, keyOf: KeyOf | undefined, run: RunOptions, started: number, message: DecisionMessage | undefined): Promise<Decision> {
    const release = await this.#slots.acquire();
    const gen = this.#current;
    gen.enter();
    try {
      return await this.#run(gen, event, keyOf, started, run, message);
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
   * A new connect on a connection that still has a live session: that session's client is gone
   * without a disconnect (a restarted OpenVPN gives its clients the ids the old one gave; in hook
   * mode a client came back from the same address and port). It ends as missed first, so the new
   * client never takes over the old one's record, addresses or set elements.
   */
  async #endEarlierHolder(key: ConnectionKey): Promise<void> {
    const earlier = this.sessions.get(key);
    if (!earlier) return;
    this.log.info({ instance: earlier.instance, commonName: earlier.commonName }, 'a new client on a live session’s connection: that session ends as missed');
    await this.#dispatch(missedDisconnect(earlier, sourceOf(key)), () => key, {}, performance.now());
  }

  /** A learn-address add the daemon makes itself; a malformed address is refused as handle() refuses it. */
  #learnAdd(instance: string, source: EventSource, address: string, commonName: string | undefined): Promise<Decision> {
    let event: AnyEvent;
    try {
      event = learnAddressAdd(instance, source, address, commonName);
    } catch (err) {
      this.log.error({ event: 'learn-address', instance, err: errorMessage(err) }, 'malformed event refused');
      return Promise.resolve({ verdict: 'deny', reason: `malformed event: ${errorMessage(err)}`, config: [] });
    }
    return this.#dispatch(event, undefined, {}, performance.now());
  }

  /**
   * OpenVPN assigned a live client an address after its connect was answered (management
   * >CLIENT:ADDRESS): the session learns it, then plugins hear a learn-address add.
   */
  async addressAssigned(key: ConnectionKey, address: string): Promise<Decision> {
    const session = this.sessions.get(key);
    if (session && isIP(address) !== 0) this.sessions.setAddress(session, address);
    return this.#learnAdd(key.instance, sourceOf(key), address, session?.commonName);
  }

  /**
   * Reports an accepted client's VPN addresses as learn-address adds, as management mode does
   * with >CLIENT:ADDRESS: hook mode with `learn-address: connect` runs no learn-address hook.
   * Nothing when the client has left already.
   */
  async learnAtConnect(key: ConnectionKey): Promise<void> {
    const session = this.sessions.get(key);
    if (!session) return;
    for (const address of [session.vpnAddress, session.vpnAddress6]) {
      if (address) await this.#learnAdd(key.instance, sourceOf(key), address, session.commonName);
    }
  }

  /**
   * OpenVPN's list of an instance's connected clients, taken anew: every listed client with an
   * address that is no live session yet becomes one (a client still waiting for its answer has
   * no address and is no session); with `closeMissed`, live sessions keyed like the list's that
   * it lacks have left while nobody watched, and their disconnect runs now.
   */
  async rebuild(instance: string, clients: readonly ListedClient[], options: RebuildOptions = {}): Promise<RebuildResult> {
    let rebuilt = 0;
    const fresh = clients.filter((c) => (c.vpnAddress || c.vpnAddress6) && !this.sessions.get(c.key));
    const recalled = fresh.length > 0 ? await this.#recalled(instance) : undefined;
    for (const c of fresh) {
      // connected while the store answered
      if (this.sessions.get(c.key)) continue;
      // the list was taken before this client left: its disconnect has run
      const ended = this.#ended.get(keyString(c.key));
      if (ended !== undefined && ended >= c.connectedAt) continue;
      const { key, connectedAt, bytesReceived: _in, bytesSent: _out, ...info } = c;
      const record = recalled?.get(connectionString(c));
      // the list holds whatever username each client sent: the table's policy decides
      // (restoredUsernamesVerified), unless this connection's record shows the daemon verified
      // that very name, or a name where the client sent none (a plugin named the user: a web login)
      const vouched = record?.username !== undefined && (c.username === undefined || record.username === c.username);
      // its record's id: a kill or a plugin marking the session reaches that record
      const session = this.sessions.create(key, vouched ? { ...info, username: record.username } : info, connectedAt, vouched ? true : undefined, record?.id);
      // the groups its authentication and connect gave come back from its record; the rules' are the rules' now
      if (record && record.username === session.username) {
        const given = (record.groups ?? []).filter((g) => !this.#ruleNames.has(g));
        joinGroups(session, given);
        // the record cannot tell an authentication's groups from a connect plugin's
        this.#noteAuthGroups(session, given);
      }
      joinGroups(session, this.#rules(session));
      this.sessions.add(session);
      rebuilt++;
    }
    let closedAsMissed = 0;
    if (options.closeMissed) {
      // listed, so not gone: also a client whose accept OpenVPN has not applied yet
      const listed = new Set(clients.map((c) => keyString(c.key)));
      const missed = this.sessions.list().filter((s) => s.instance === instance && s.key.via === options.closeMissed && !listed.has(keyString(s.key)));
      for (const s of missed) {
        const key = s.key;
        await this.#dispatch(missedDisconnect(s, sourceOf(key)), () => key, {}, performance.now());
        closedAsMissed++;
      }
    }
    return { rebuilt, closedAsMissed };
  }

  #noteEnded(key: ConnectionKey): void {
    const id = keyString(key);
    this.#ended.delete(id);
    this.#ended.set(id, Date.now());
    // a Map iterates in insertion order: drop the oldest
    if (this.#ended.size > ENDED_MEMORY) this.#ended.delete(this.#ended.keys().next().value!);
  }

  /** The instance's open records by connection (the newest of each), or none when the store cannot say. */
  async #recalled(instance: string): Promise<Map<string, RecalledSession> | undefined> {
    if (!this.recall) return undefined;
    try {
      const byConnection = new Map<string, RecalledSession>();
      for (const r of await this.recall(instance)) {
        const connection = connectionString({ ...r, instance });
        const known = byConnection.get(connection);
        if (!known || known.startedAt < r.startedAt) byConnection.set(connection, r);
      }
      return byConnection;
    } catch (err) {
      this.log.warn(
        { instance, err: errorMessage(err) },
        "open session records unreadable: rebuilt sessions get only the static rules' groups and unverified usernames",
      );
      return undefined;
    }
  }

  /**
   * Was the username this client-connect carries verified for this client? By OpenVPN, where
   * the config says so, or by a verifying plugin at this client's user-pass-verify; with the
   * groups that plugin gave (taken once: the next connect from the same address and port must
   * be verified anew).
   */
  #takeVerified(event: ClientConnectEvent): Verified {
    const claimed = event.env.username;
    const link = authLink(event);
    const noted = link === undefined ? undefined : this.#verified.get(link);
    if (link !== undefined) this.#verified.delete(link);
    const byPlugin = noted !== undefined && noted.claimed === (claimed ?? '') && Date.now() - noted.at <= VERIFIED_TTL_MS;
    // a plugin may name the user where the client sent no username (a web login)
    if (byPlugin && noted.username !== claimed) return { verified: true, username: noted.username, groups: noted.groups };
    if (!claimed) return UNVERIFIED;
    return { verified: byPlugin || this.#identity.usernamesVerifiedByOpenvpn === true, groups: byPlugin ? noted.groups : undefined };
  }

  /**
   * Notes the outcome of a user-pass-verify for the client-connect that follows it. A live
   * hook-mode client authenticating again (a renegotiation runs no client-connect there) takes
   * the groups this authentication brought at once.
   */
  #noteVerified(gen: Generation, event: AnyEvent & { name: 'user-pass-verify' }, decision: Decision): void {
    const link = authLink(event);
    if (link === undefined) return;
    this.#verified.delete(link);
    const username = decision.username ?? event.username;
    if (decision.verdict !== 'accept' || !gen.verifiesUsernames || username === '') return;
    const groups = decision.groups;
    this.#verified.set(link, { claimed: event.username, username, groups, at: Date.now() });
    // a Map iterates in insertion order: drop the oldest
    if (this.#verified.size > VERIFIED_MEMORY) this.#verified.delete(this.#verified.keys().next().value!);
    const live = this.sessions.get(hookKey(event));
    if (live && groups !== undefined && live.username === username) {
      const before = live.groups;
      // no client-connect runs here: the groups connect plugins gave stay
      const earlier = new Set([...(this.#authGroups.get(live) ?? []), ...this.#rules(live)]);
      setGroups(live, [...groups, ...this.#rules(live), ...before.filter((g) => !earlier.has(g))]);
      this.#noteAuthGroups(live, groups);
      this.#groupsMayHaveChanged(live, before);
    }
  }

  /** Tells `groupsChanged` when a live client's re-authentication left it in other groups. */
  #groupsMayHaveChanged(session: Session, before: readonly string[]): void {
    const now = session.groups;
    if (now.length === before.length && now.every((g, i) => g === before[i])) return;
    try {
      this.groupsChanged?.(session, before);
    } catch (err) {
      this.log.error({ commonName: session.commonName, err: errorMessage(err) }, 'acting on changed groups failed');
    }
  }

  /**
   * A connecting client's groups before plugins run: those its authentication gave and the
   * static rules'. A live client authenticating again keeps its groups unless the new
   * authentication decided them (even as none: a directory user removed from every group);
   * its connect plugins run again and add theirs.
   */
  #groupsAtConnect(session: Session, carried: readonly string[] | undefined, reauth: boolean): void {
    if (!reauth) {
      joinGroups(session, [...(carried ?? []), ...this.#rules(session)]);
      this.#noteAuthGroups(session, carried ?? []);
    } else if (carried !== undefined) {
      setGroups(session, [...carried, ...this.#rules(session)]);
      this.#noteAuthGroups(session, carried);
    }
  }

  /** Kept only where there are some: most clients' authentication gives none. */
  #noteAuthGroups(session: Session, groups: readonly string[]): void {
    if (groups.length > 0) this.#authGroups.set(session, groups);
    else this.#authGroups.delete(session);
  }

  async #run(gen: Generation, event: AnyEvent, keyOf: KeyOf | undefined, started: number, run: RunOptions, message?: DecisionMessage): Promise<Decision> {
    const { pipeline } = gen;
    let session: Session | undefined;
    let decision: Decision;
    switch (event.name) {
      case 'client-connect': {
        // a username is identity only once verified; the claim stays in env
        const taken = this.#takeVerified(event);
        if (taken.verified) event = { ...event, username: taken.username ?? event.env.username };
        const key = this.#keyOf(keyOf, event);
        const live = this.sessions.get(key);
        session = event.reauth && live ? live : this.sessions.create(key, clientInfo(event), (event.time ?? Date.now() / 1000) * 1000, true);
        // plugins see the groups on the session; those they add join it as each one accepts
        const groupsBefore = session.groups;
        const authBefore = this.#authGroups.get(session);
        this.#groupsAtConnect(session, taken.groups, session === live);
        decision = await pipeline.run(event, session, run);
        // a live client keeps its address on reauth; a new one gets the answer's, before its
        // record is made and learn-address looks it up by that address
        if (decision.verdict === 'accept' && session !== live) {
          const given = decision.addresses;
          if (given?.vpnAddress) this.sessions.setAddress(session, given.vpnAddress);
          if (given?.vpnAddress6) this.sessions.setAddress(session, given.vpnAddress6);
        }
        if (pipeline.settles) decision = await pipeline.settle(event, decision, session);
        if (decision.verdict === 'accept') this.sessions.add(session);
        else this.#rememberDenied(key);
        // a refused re-authentication changes nothing of the live session
        if (decision.verdict !== 'accept' && session === live) {
          setGroups(session, groupsBefore);
          this.#noteAuthGroups(session, authBefore ?? []);
        } else if (session === live) this.#groupsMayHaveChanged(session, groupsBefore);
        break;
      }
      case 'client-disconnect': {
        const key = this.#keyOf(keyOf, event);
        if (!this.sessions.get(key) && this.#denied.delete(keyString(key))) {
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
        if (!known) {
          session = this.sessions.create(key, clientInfo(event), Date.now() - event.duration * 1000, true);
          joinGroups(session, this.#rules(session));
        } else session = known;
        decision = await pipeline.run(event, session);
        this.sessions.remove(key);
        this.#noteEnded(key);
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
        for (const s of gone) {
          this.sessions.remove(s.key);
          this.#noteEnded(s.key);
        }
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

  /** The connection a client event belongs to, as its source names it. */
  #keyOf(keyOf: KeyOf | undefined, event: ClientConnectEvent | ClientDisconnectEvent): ConnectionKey {
    if (!keyOf) throw new Error(`${event.name} without a connection key`);
    return keyOf(event);
  }

  #rememberDenied(key: ConnectionKey): void {
    this.#denied.add(keyString(key));
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
    if (event.name === 'client-connect' && session)
      Object.assign(fields, {
        vpnAddress: session.vpnAddress,
        vpnAddress6: session.vpnAddress6,
        groups: session.groups.length > 0 ? session.groups : undefined,
      });
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

/**
 * @module store
 * The accounting store: every session (who, from where, which addresses, when, bytes, how it
 * ended) and every denial. A write resolves only once it is durable (SQLite: committed with
 * synchronous=FULL; PostgreSQL: committed), so the daemon answers OpenVPN after the record is
 * safe: a crash loses no acknowledged session.
 */
import type { ClientConnection, ClientIdentity, ClientInfo, VpnAddresses } from '../core/client.ts';
import type { WebLoginStates } from './web-logins.ts';

export type { ClientConnection };

/**
 * How a session ended: the client or OpenVPN ended it (`disconnect`), it ended while no daemon
 * was watching (`missed`), or a plugin disconnected it (`killed`, e.g. over a session limit).
 */
export type EndReason = 'disconnect' | 'missed' | 'killed';

/** A session's record as it starts: the client (without the daemon's key), its session id and start. */
export interface SessionStart extends ClientInfo {
  /** The daemon's session id (a UUID). */
  readonly id: string;
  /** ms since the epoch. */
  readonly startedAt: number;
  /** The groups the client is in (from its authentication and the operator's rules), when any. */
  readonly groups?: readonly string[];
}

export interface SessionEnd extends VpnAddresses {
  readonly endedAt: number;
  /** Seconds, as OpenVPN reports it. */
  readonly duration: number;
  /** Bytes from the client (OpenVPN's bytes_received) and to it (bytes_sent). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly reason: EndReason;
}

export interface SessionRecord extends SessionStart {
  readonly endedAt?: number;
  readonly duration?: number;
  readonly bytesIn?: number;
  readonly bytesOut?: number;
  readonly endReason?: EndReason;
}

/** A refused client: as much of its identity as the refused event carried. */
export interface DenialRecord extends Partial<ClientIdentity>, Pick<ClientInfo, 'instance'> {
  readonly at: number;
  /** The event that was refused: tls-verify, user-pass-verify or client-connect. */
  readonly event: string;
  readonly reason: string;
  readonly plugin?: string;
}

export interface SessionQuery {
  /** Common name or username. */
  readonly user?: string;
  readonly instance?: string;
  /** Sessions active at or after this time (ms). */
  readonly since?: number;
  /** Sessions started before this time (ms). */
  readonly until?: number;
  readonly openOnly?: boolean;
  readonly limit?: number;
}

/** A user's limit on concurrent sessions, checked and applied atomically by `claimSession`. */
export interface SessionLimit {
  /** Sessions a user may have open at once. */
  readonly max: number;
  /** At the limit: true records nothing (the new session is refused), false records it anyway. */
  readonly refuse: boolean;
}

/**
 * A request to the daemon serving `instance` to disconnect the client of a session record; the
 * connection identifies the client when that daemon restarted since the record was made.
 */
export interface KillRequest extends ClientConnection {
  readonly sessionId: string;
  readonly reason: string;
  readonly requestedAt: number;
}

/**
 * A new connect on a connection (instance, common name, real address and port) that has an open
 * record means that record's client is gone: OpenVPN replaced it, or a daemon died between
 * recording a connect and answering it and OpenVPN ran the connect again. The old record ends
 * as `missed` when the new one starts, so a connection has at most one open record. SQL for
 * both backends; `$start` is the new session's start.
 */
export const SUPERSEDE_SET = `ended_at = GREATEST(started_at, $start), duration = GREATEST(0, ($start - started_at) / 1000), bytes_in = 0, bytes_out = 0,
       end_reason = COALESCE(end_reason, 'missed')`;

/**
 * The key a session counts against in limits. Usernames and common names are separate
 * namespaces: a session with a (verified) username counts against that username, one without
 * against its common name, and username `alice` is not common name `alice`.
 */
export interface LimitKey {
  readonly kind: 'username' | 'common-name';
  readonly name: string;
}

export const limitKeyOf = (s: Pick<ClientIdentity, 'username' | 'commonName'>): LimitKey =>
  s.username !== undefined ? { kind: 'username', name: s.username } : { kind: 'common-name', name: s.commonName };

/** The open sessions of a limit key, for both backends (`$key`, `$id`: placeholders to fill). */
/**
 * Sessions and denials `prune` removes, for both backends (`$before`: the placeholder to fill).
 * A session ends after it starts, so `started_at` (indexed) narrows the search before `ended_at`.
 */
export const PRUNE_SESSIONS_WHERE = 'started_at < $before AND ended_at IS NOT NULL AND ended_at < $before';
export const PRUNE_DENIALS_WHERE = 'at < $before';
/** Rows one prune transaction removes, unless told otherwise. */
export const PRUNE_BATCH = 1000;

export const limitKeyWhere = (kind: LimitKey['kind']): string =>
  kind === 'username' ? 'ended_at IS NULL AND username = $key AND id <> $id' : 'ended_at IS NULL AND username IS NULL AND common_name = $key AND id <> $id';

/** What `prune` removed, or with `dryRun` would remove. */
export interface PruneCounts {
  readonly sessions: number;
  readonly denials: number;
}

export interface PruneOptions {
  /** Count only; nothing is removed. */
  readonly dryRun?: boolean;
  /** Rows per transaction (default 1000): a daemon writing to the same store waits for one batch at most. */
  readonly batch?: number;
}

/** How much the store waited on its database: for the metrics and the benchmark's round trips per connect. */
export interface StoreStats {
  /**
   * Waits on the database since the store was opened: PostgreSQL statements sent (each a round
   * trip to the server, BEGIN and COMMIT included); SQLite commits (each waits for an fsync).
   */
  readonly roundTrips: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Counters since the store was opened. */
  stats(): StoreStats;
  /** Records a new session (once: a second call with the same id changes nothing); durable when the promise resolves. */
  openSession(start: SessionStart): Promise<void>;
  /**
   * In one transaction, serialised per limit key (limitKeyOf) across every daemon sharing the
   * store: the key's other open sessions (oldest first), and the new session recorded unless
   * `limit.refuse` and `limit.max` of them are open already.
   */
  claimSession(start: SessionStart, limit: SessionLimit): Promise<{ readonly recorded: boolean; readonly others: SessionRecord[] }>;
  /** Removes the open record of a session that never began: its connect was refused after it was recorded. */
  forgetSession(id: string): Promise<void>;
  /** Marks an open session as being disconnected on purpose (its end is recorded as `killed`), or unmarks it. */
  markKilled(id: string, killed?: boolean): Promise<void>;
  /** Asks the daemon serving the record's instance to disconnect its client. */
  requestKill(request: KillRequest): Promise<void>;
  /** Takes (and removes) the requests for these instances that are newer than `since` (ms); older ones are dropped. */
  takeKillRequests(instances: readonly string[], since: number): Promise<KillRequest[]>;
  /** Closes the open session with this id, or else (when given) the newest open one of this connection; false if none. */
  closeSession(id: string | undefined, connection: ClientConnection | undefined, end: SessionEnd): Promise<boolean>;
  /**
   * Replaces the groups of the newest open record of this connection (a re-authentication
   * changed them), so a daemon restart takes back the groups the client has now; false if none is open.
   */
  setGroups(connection: ClientConnection, groups: readonly string[]): Promise<boolean>;
  /** Sets a live session's VPN addresses (management mode learns them after the connect). */
  setAddresses(id: string, addresses: VpnAddresses): Promise<void>;
  recordDenial(denial: DenialRecord): Promise<void>;
  /** Sessions still open for an instance (to close those that ended while the daemon was away). */
  openSessions(instance: string): Promise<SessionRecord[]>;
  /** Session history, newest first. */
  sessions(query: SessionQuery): Promise<SessionRecord[]>;
  denials(query: { readonly since?: number; readonly instance?: string; readonly limit?: number }): Promise<DenialRecord[]>;
  /** Open sessions of a user (common name or username) across every instance sharing the store. */
  countOpen(user: string): Promise<number>;
  /**
   * Removes the closed sessions that ended before `before` (ms) and the denials made before it,
   * in batches; an open session is never removed, however old.
   */
  prune(before: number, options?: PruneOptions): Promise<PruneCounts>;
  /** Web logins in progress (the web-login plugin shares them through a PostgreSQL store). */
  readonly webLogins: WebLoginStates;
  close(): Promise<void>;
}

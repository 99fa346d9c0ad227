/**
 * @module source
 * What an event source (hook mode's spool, a management interface) and the daemon agree on.
 * A source translates its wire format into events, hands them to the `EventSink` it is given
 * and sends the answers back; it never changes the live sessions itself. The daemon wires
 * sources to its dispatcher; sources import nothing of the daemon.
 */
import type { ClientConnectEvent, ClientDisconnectEvent, EventName } from './event-map.ts';
import type { RawEvent } from './parse-event.ts';
import type { Client, ConnectionKey, ListedClient } from '../core/client.ts';
import type { Decision, RunOptions } from '../core/decision.ts';

/**
 * After a restart, sources read the live clients a second time this much later: a client whose
 * connect was answered just before the restart may be applied by OpenVPN only after the first look.
 */
export const REBUILD_AGAIN_MS = 8000;

/** Names the connection a client-connect or client-disconnect belongs to, from the parsed event. */
export type KeyOf = (event: ClientConnectEvent | ClientDisconnectEvent) => ConnectionKey;

export interface RawInput {
  /** The event as OpenVPN gave it: parsed and checked by the sink. */
  readonly raw: RawEvent;
  readonly keyOf: KeyOf;
  readonly run?: RunOptions;
}

export interface RebuildOptions {
  /**
   * Live sessions of the instance with this kind of key that the list lacks left while nobody
   * watched: their disconnect runs now (marked `missed`). Only for a list that is complete and
   * current (management `status`); unset, nothing is closed.
   */
  readonly closeMissed?: ConnectionKey['via'];
}

export interface RebuildResult {
  /** Listed clients that became live sessions. */
  readonly rebuilt: number;
  /** Live sessions closed as missed. */
  readonly closedAsMissed: number;
}

/** The daemon as sources see it: where events go, and a read-only look at the live clients. */
export interface EventSink {
  /** Does any plugin handle this event? Sources can skip work for events nobody wants. */
  handles(name: EventName): boolean;
  /** Parses, checks and runs one event. Never throws: a malformed event or a failure is a deny. */
  handle(input: RawInput): Promise<Decision>;
  /** OpenVPN gave a live client an address after its connect (management >CLIENT:ADDRESS): a learn-address add. */
  addressAssigned(key: ConnectionKey, address: string): Promise<Decision>;
  /** Reports an accepted client's VPN addresses as learn-address adds (hook mode runs no learn-address hook then). */
  learnAtConnect(key: ConnectionKey): Promise<void>;
  /** OpenVPN's list of an instance's connected clients, taken anew (after a restart or attach). */
  rebuild(instance: string, clients: readonly ListedClient[], options?: RebuildOptions): Promise<RebuildResult>;
  /** The live client of a connection, if any. */
  client(key: ConnectionKey): Client | undefined;
  /** Every live client. */
  clients(): readonly Client[];
}

/** An event source the daemon starts, asks and stops. */
export interface SourceAdapter {
  start(): Promise<void>;
  /** Stops taking events and answers the ones in progress. */
  close(): Promise<void>;
  /** Disconnects a live client, where the source can (management mode); false when the key is not its own. */
  kill?(key: ConnectionKey, reason: string): Promise<boolean>;
  /** The clients OpenVPN lists as connected now, with byte counts, where the source can ask. */
  liveClients?(): Promise<readonly ListedClient[]>;
}

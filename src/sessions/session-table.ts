/**
 * @module session-table
 * Live client sessions, from an accepted connect to its disconnect. Each session holds every
 * plugin's per-client state. Sessions are found by their ConnectionKey (core/client.ts), a value
 * unique while the client is connected (hook mode: instance + real address and port; management
 * mode: instance + CID); only the dispatcher adds and removes them.
 * learn-address names a client only by its VPN address and runs for every client in a reconnect
 * storm, so the table also indexes sessions by instance and VPN address.
 */
import { randomUUID } from 'node:crypto';
import { keyString, type Client, type ClientInfo, type ConnectionKey } from '../core/client.ts';

/** Per-client state of one plugin: lives from client-connect until client-disconnect. */
export type ClientState = Map<string, unknown>;

/**
 * A live client session: the client, and every plugin's state for it. vpnAddress / vpnAddress6
 * are learned after the connect in management mode (>CLIENT:ADDRESS) or taken from the accepted
 * answer's ifconfig-push, through SessionTable.setAddress only, which keeps the address index true.
 */
export interface Session extends Client {
  /** The daemon's session id (a UUID), also the id of its record in the store. */
  readonly id: string;
  /** Plugin name → that plugin's state for this client. */
  readonly pluginState: Map<string, ClientState>;
}

export function stateOf(session: Session, plugin: string): ClientState {
  let state = session.pluginState.get(plugin);
  if (!state) session.pluginState.set(plugin, (state = new Map()));
  return state;
}

/** The most groups one session holds, whatever the sources of its groups (see core/groups.ts). */
const MAX_SESSION_GROUPS = 1024;

/**
 * Puts a session in groups, each once, in the order they came. The one way a session's groups
 * grow: while its connect runs, plugins after the one that added them see them.
 */
export function joinGroups(session: Session, groups: readonly string[]): void {
  if (groups.length === 0) return;
  const all = new Set([...session.groups, ...groups]);
  (session as { groups: readonly string[] }).groups = [...all].slice(0, MAX_SESSION_GROUPS);
}

/** Replaces a session's groups (a re-authentication that brought its own). */
export function setGroups(session: Session, groups: readonly string[]): void {
  (session as { groups: readonly string[] }).groups = [];
  joinGroups(session, groups);
}

type Family = 'vpnAddress' | 'vpnAddress6';

export class SessionTable {
  /** keyString(key) → session. */
  readonly #byKey = new Map<string, Session>();
  /**
   * instance → VPN address → the registered sessions holding it, the latest to take it last.
   * Usually one; two when OpenVPN gave the address of a client whose disconnect was missed.
   */
  readonly #byAddress = new Map<string, Map<string, Session[]>>();

  /**
   * Whether the username of a session rebuilt from OpenVPN's list of live clients (after a
   * daemon restart) is kept. That list holds whatever username each client sent; it was
   * verified only if every connect had to pass a plugin that verifies usernames, or OpenVPN's
   * own check. The daemon's dispatcher sets this from its plugins and config (a table of its
   * own, as in tools and tests, keeps what it is given).
   */
  restoredUsernamesVerified = true;

  /**
   * A new, not yet registered session (registered by `add` once the connect is accepted).
   * `usernameVerified`: whether `info.username` was verified for this client; a caller that
   * cannot tell (rebuilding sessions) leaves it out and `restoredUsernamesVerified` decides. An
   * unverified username is dropped: a session's username is identity. `id`: the id of the
   * session's record, for one rebuilt after a daemon restart; a new one otherwise.
   */
  create(
    key: ConnectionKey,
    info: ClientInfo,
    connectedAt = Date.now(),
    usernameVerified = this.restoredUsernamesVerified,
    id: string = randomUUID(),
  ): Session {
    // every field named, in one order: a spread followed by more fields gives each object a hidden
    // class of its own in V8 (about 400 bytes more per live session, and slower lookups)
    return {
      instance: info.instance,
      commonName: info.commonName,
      username: usernameVerified ? info.username : undefined,
      realAddress: info.realAddress,
      realPort: info.realPort,
      vpnAddress: info.vpnAddress || undefined,
      vpnAddress6: info.vpnAddress6 || undefined,
      id,
      key,
      connectedAt,
      groups: [],
      pluginState: new Map(),
    };
  }

  /**
   * Gives a session a VPN address (v4 or v6 by its form), replacing the one of that family; the
   * address index follows when the session is registered. The only way addresses change.
   */
  setAddress(session: Session, address: string): void {
    const family: Family = address.includes(':') ? 'vpnAddress6' : 'vpnAddress';
    const from = session[family];
    if (from === address) return;
    const registered = this.#byKey.get(keyString(session.key)) === session;
    if (registered && from !== undefined) this.#unindex(session, from);
    (session as { -readonly [F in Family]?: string })[family] = address;
    if (registered) this.#index(session, address);
  }

  /** Registers a session; one with the same key is replaced. */
  add(session: Session): void {
    const k = keyString(session.key);
    const before = this.#byKey.get(k);
    if (before === session) return;
    if (before) this.#unindexAll(before);
    this.#byKey.set(k, session);
    this.#indexAll(session);
  }

  get(key: ConnectionKey): Session | undefined {
    return this.#byKey.get(keyString(key));
  }

  /** The live session holding a VPN address (learn-address names clients by address). */
  byAddress(instance: string, address: string): Session | undefined {
    const holders = this.#byAddress.get(instance)?.get(address.replace(/\/\d+$/, ''));
    return holders?.[holders.length - 1];
  }

  remove(key: ConnectionKey): Session | undefined {
    const k = keyString(key);
    const s = this.#byKey.get(k);
    if (!s) return undefined;
    this.#byKey.delete(k);
    this.#unindexAll(s);
    return s;
  }

  list(): Session[] {
    return [...this.#byKey.values()];
  }

  get size(): number {
    return this.#byKey.size;
  }

  #indexAll(s: Session): void {
    if (s.vpnAddress !== undefined) this.#index(s, s.vpnAddress);
    if (s.vpnAddress6 !== undefined) this.#index(s, s.vpnAddress6);
  }

  #unindexAll(s: Session): void {
    if (s.vpnAddress !== undefined) this.#unindex(s, s.vpnAddress);
    if (s.vpnAddress6 !== undefined) this.#unindex(s, s.vpnAddress6);
  }

  #index(s: Session, address: string): void {
    let addresses = this.#byAddress.get(s.instance);
    if (!addresses) this.#byAddress.set(s.instance, (addresses = new Map()));
    const holders = addresses.get(address);
    if (!holders) addresses.set(address, [s]);
    else if (!holders.includes(s)) holders.push(s);
  }

  #unindex(s: Session, address: string): void {
    const addresses = this.#byAddress.get(s.instance);
    const holders = addresses?.get(address);
    if (!addresses || !holders) return;
    const at = holders.indexOf(s);
    if (at >= 0) holders.splice(at, 1);
    if (holders.length > 0) return;
    addresses.delete(address);
    if (addresses.size === 0) this.#byAddress.delete(s.instance);
  }
}

/**
 * @module session-table
 * Live client sessions, from an accepted connect to its disconnect. Each session holds every
 * plugin's per-client state. Sources name sessions by a key that is unique while the client
 * is connected (hook mode: instance + real address and port; management mode: instance + CID).
 */
import { randomUUID } from 'node:crypto';
import type { ClientState } from '../plugins/plugin-api.ts';

export interface SessionInfo {
  readonly instance: string;
  readonly commonName: string;
  readonly username?: string;
  readonly realAddress?: string;
  readonly realPort?: number;
  readonly vpnAddress?: string;
  readonly vpnAddress6?: string;
}

export interface Session extends SessionInfo {
  /** Learned after the connect in management mode (>CLIENT:ADDRESS). */
  vpnAddress?: string;
  vpnAddress6?: string;
  readonly id: string;
  readonly key: string;
  readonly connectedAt: number;
  /** Plugin name → that plugin's state for this client. */
  readonly pluginState: Map<string, ClientState>;
}

/**
 * After a restart, sources read the live clients a second time this much later: a client whose
 * connect was answered just before the restart may be applied by OpenVPN only after the first look.
 */
export const REBUILD_AGAIN_MS = 8000;

export function stateOf(session: Session, plugin: string): ClientState {
  let state = session.pluginState.get(plugin);
  if (!state) session.pluginState.set(plugin, (state = new Map()));
  return state;
}

export class SessionTable {
  readonly #byKey = new Map<string, Session>();

  /** A new, not yet registered session (registered by `add` once the connect is accepted). */
  create(key: string, info: SessionInfo, connectedAt = Date.now()): Session {
    return { ...info, id: randomUUID(), key, connectedAt, pluginState: new Map() };
  }

  add(session: Session): void {
    this.#byKey.set(session.key, session);
  }

  get(key: string): Session | undefined {
    return this.#byKey.get(key);
  }

  /** The live session holding a VPN address (learn-address names clients by address). */
  byAddress(instance: string, address: string): Session | undefined {
    const bare = address.replace(/\/\d+$/, '');
    for (const s of this.#byKey.values()) {
      if (s.instance === instance && (s.vpnAddress === bare || s.vpnAddress6 === bare)) return s;
    }
    return undefined;
  }

  remove(key: string): Session | undefined {
    const s = this.#byKey.get(key);
    this.#byKey.delete(key);
    return s;
  }

  list(): Session[] {
    return [...this.#byKey.values()];
  }

  get size(): number {
    return this.#byKey.size;
  }
}

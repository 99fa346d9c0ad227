/**
 * @module session-records
 * The daemon's side of `services.records`: the one owner of a session record's lifecycle in the
 * store (opened or claimed at an accepted connect, addresses as OpenVPN learns them, closed at
 * disconnect or as `missed` after a rebuild). Several plugins keep records (accounting,
 * session-limit) and each hands over the disconnects and rebuilds it hears: the record is closed
 * once per event, not once per plugin.
 */
import { connectionString } from '../core/client.ts';
import type { ClientDisconnectEvent } from '../events/event-map.ts';
import type { LiveSession, SessionRecords } from '../plugins/plugin-api.ts';
import { limitKeyOf, type SessionRecord, type SessionStart, type Store } from '../store/store.ts';

/** How long before a list of live clients a connect may have begun and still be missing from it. */
const UNLISTED_MARGIN_MS = 5000;

function sessionStart(s: LiveSession): SessionStart {
  return {
    id: s.id,
    instance: s.instance,
    commonName: s.commonName,
    username: s.username,
    realAddress: s.realAddress,
    realPort: s.realPort,
    vpnAddress: s.vpnAddress,
    vpnAddress6: s.vpnAddress6,
    startedAt: s.connectedAt,
    ...(s.groups.length > 0 ? { groups: s.groups } : {}),
  };
}

/**
 * The result of `step` for `key`, shared by every caller with the same key while it is kept
 * (the key is an event or a list the daemon hands every plugin); a failure is not kept, so the
 * next caller tries again.
 */
function once<K extends object, T>(memo: WeakMap<K, Promise<T>>, key: K, step: () => Promise<T>): Promise<T> {
  let result = memo.get(key);
  if (!result) {
    result = step();
    memo.set(key, result);
    result.catch(() => memo.delete(key));
  }
  return result;
}

export class StoreSessionRecords implements SessionRecords {
  readonly #closed = new WeakMap<ClientDisconnectEvent, Promise<boolean>>();
  readonly #rebuilt = new WeakMap<readonly LiveSession[], Promise<number>>();
  /** Sessions a claim recorded (session-limit before accounting): their open has nothing left to write. */
  readonly #claimed = new WeakSet<LiveSession>();

  /** Private for real: a plugin holding this service cannot reach the store behind it. */
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  open(session: LiveSession): Promise<void> {
    // recorded (and durable) by its claim: a second write of the same id would change nothing
    if (this.#claimed.has(session)) return Promise.resolve();
    return this.#store.openSession(sessionStart(session));
  }

  async claim(session: LiveSession, limit: { readonly max: number; readonly refuse: boolean }) {
    const claimed = await this.#store.claimSession(sessionStart(session), limit);
    if (claimed.recorded) this.#claimed.add(session);
    return claimed;
  }

  forget(sessionId: string): Promise<void> {
    return this.#store.forgetSession(sessionId);
  }

  addAddress(sessionId: string, address: string): Promise<void> {
    return this.#store.setAddresses(sessionId, address.includes(':') ? { vpnAddress6: address } : { vpnAddress: address });
  }

  /**
   * The event carries no session id, and after a daemon restart the ids are new anyway: the
   * record is found by its connection (instance, common name, real address and port: unique
   * among a server's live clients).
   */
  close(event: ClientDisconnectEvent): Promise<boolean> {
    return once(this.#closed, event, () =>
      this.#store.closeSession(undefined, event, {
        endedAt: Date.now(),
        duration: event.duration,
        bytesIn: event.bytesReceived,
        bytesOut: event.bytesSent,
        vpnAddress: event.vpnAddress,
        vpnAddress6: event.vpnAddress6,
        reason: event.missed ? 'missed' : 'disconnect',
      }),
    );
  }

  closeMissed(instance: string, live: readonly LiveSession[], asOf: number): Promise<number> {
    return once(this.#rebuilt, live, async () => {
      const alive = new Set(live.map(connectionString));
      let closed = 0;
      for (const r of await this.#store.openSessions(instance)) {
        // A client whose connect began shortly before the list was taken may have been answered
        // after it, so it is not in the list yet is connected: leave those open.
        if (r.startedAt >= asOf - UNLISTED_MARGIN_MS || alive.has(connectionString(r))) continue;
        if (await this.#closeAsMissed(r)) closed++;
      }
      return closed;
    });
  }

  async closeUnseen(record: SessionRecord): Promise<void> {
    await this.#closeAsMissed(record);
  }

  /** Left while no daemon was watching: when exactly, and the bytes, are unknown. */
  #closeAsMissed(r: SessionRecord): Promise<boolean> {
    const now = Date.now();
    return this.#store.closeSession(r.id, undefined, {
      endedAt: now,
      duration: Math.max(0, Math.round((now - r.startedAt) / 1000)),
      bytesIn: 0,
      bytesOut: 0,
      reason: 'missed',
    });
  }

  recordDenial(...args: Parameters<Store['recordDenial']>) {
    return this.#store.recordDenial(...args);
  }

  markKilled(sessionId: string, killed?: boolean): Promise<void> {
    return this.#store.markKilled(sessionId, killed);
  }

  requestKill(...args: Parameters<Store['requestKill']>) {
    return this.#store.requestKill(...args);
  }

  takeKillRequests(instances: readonly string[], since: number) {
    return this.#store.takeKillRequests(instances, since);
  }

  limitKey(session: { readonly username?: string; readonly commonName: string }) {
    return limitKeyOf(session);
  }
}

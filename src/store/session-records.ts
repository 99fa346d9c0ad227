/**
 * @module session-records
 * Keeping session records in step with OpenVPN, shared by the plugins that record sessions
 * (accounting, session-limit): each call is idempotent, so both plugins may make it.
 */
import type { Client, ClientInfo } from '../core/client.ts';
import type { EventMap } from '../events/event-map.ts';
import type { SessionStart, Store } from './store.ts';

/** A live session as records need it: the client, its session id and since when. */
export type RecordedSession = ClientInfo & Pick<Client, 'connectedAt'> & { readonly id: string };

/** How long before a list of live clients a connect may have begun and still be missing from it. */
const UNLISTED_MARGIN_MS = 5000;

export function sessionStart(s: RecordedSession): SessionStart {
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
  };
}

/**
 * Closes the record of a disconnecting client. The event carries no session id, and after a
 * daemon restart the ids are new anyway: the record is found by its connection (instance,
 * common name, real address and port: unique among a server's live clients). False if none.
 */
export function closeAtDisconnect(store: Store, event: EventMap['client-disconnect']): Promise<boolean> {
  return store.closeSession(undefined, event, {
    endedAt: Date.now(),
    duration: event.duration,
    bytesIn: event.bytesReceived,
    bytesOut: event.bytesSent,
    vpnAddress: event.vpnAddress,
    vpnAddress6: event.vpnAddress6,
    reason: event.missed ? 'missed' : 'disconnect',
  });
}

/** Closes as `missed` the instance's open records whose client is not in `live` any more; returns how many. */
export async function closeMissed(store: Store, instance: string, live: readonly RecordedSession[], asOf: number): Promise<number> {
  const alive = new Set(live.map((s) => `${s.commonName}\0${s.realAddress}\0${s.realPort}`));
  let closed = 0;
  for (const r of await store.openSessions(instance)) {
    // A client whose connect began shortly before the list was taken may have been answered
    // after it, so it is not in the list yet is connected: leave those open.
    if (r.startedAt >= asOf - UNLISTED_MARGIN_MS || alive.has(`${r.commonName}\0${r.realAddress}\0${r.realPort}`)) continue;
    // left while no daemon was watching: when exactly, and the bytes, are unknown
    const now = Date.now();
    if (
      await store.closeSession(r.id, undefined, {
        endedAt: now,
        duration: Math.max(0, Math.round((now - r.startedAt) / 1000)),
        bytesIn: 0,
        bytesOut: 0,
        reason: 'missed',
      })
    )
      closed++;
  }
  return closed;
}

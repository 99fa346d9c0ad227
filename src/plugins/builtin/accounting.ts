/**
 * @module accounting
 * Built-in plugin `accounting`: one record per session and one per denial in the store.
 *
 * A session is recorded when its connect is accepted, before OpenVPN is answered: if the record
 * cannot be made durable the client is denied, so no client is ever connected without its
 * record. It is closed at disconnect with bytes, duration and how it ended. After a restart the
 * daemon's session ids are new, so a disconnect also finds its record by the connection (instance,
 * common name, real address and port); records of clients that left while no daemon was
 * watching are closed as `missed` once the instance's live clients are known again.
 *
 * @example
 * store:
 *   sqlite: /var/lib/flexscript/accounting.db
 * plugins:
 *   - use: accounting
 */
import type { PluginDefinition } from '../plugin-api.ts';

/** How long before a list of live clients a connect may have begun and still be missing from it. */
const UNLISTED_MARGIN_MS = 5000;

const accounting: PluginDefinition = {
  name: 'accounting',
  setup({ services, log }) {
    const store = services.store;
    if (!store) throw new Error('the accounting plugin needs a store: add a store: section (sqlite: FILE or postgres: ...) to the config');
    return {
      async decided(event, outcome, session) {
        if (outcome.verdict === 'deny') {
          // a session this plugin opened for an accept that a later plugin could not apply
          if (session && event.name === 'client-connect') {
            await store.closeSession(session.id, session, { endedAt: Date.now(), duration: 0, bytesIn: 0, bytesOut: 0, reason: 'disconnect' });
          }
          await store.recordDenial({
            at: Date.now(),
            instance: event.instance,
            event: event.name,
            commonName: event.commonName,
            username: 'username' in event ? event.username : undefined,
            realAddress: event.realAddress,
            realPort: event.realPort,
            reason: outcome.reason ?? 'denied',
            plugin: outcome.decidedBy,
          });
          return;
        }
        if (event.name !== 'client-connect' || !session || event.reauth) return;
        await store.openSession({
          id: session.id,
          instance: session.instance,
          commonName: session.commonName,
          username: session.username,
          realAddress: session.realAddress,
          realPort: session.realPort,
          vpnAddress: session.vpnAddress,
          vpnAddress6: session.vpnAddress6,
          startedAt: session.connectedAt,
        });
      },
      'learn-address': async (event) => {
        if (event.operation === 'delete') return;
        // management mode learns a client's address after its connect was answered
        const address = event.address.replace(/\/(32|128)$/, '');
        const session = services.sessions.list().find((s) => s.instance === event.instance && (s.vpnAddress === address || s.vpnAddress6 === address));
        if (session) await store.setAddresses(session.id, address.includes(':') ? { vpnAddress6: address } : { vpnAddress: address });
      },
      'client-disconnect': async (event) => {
        const closed = await store.closeSession(undefined, event, {
          endedAt: Date.now(),
          duration: event.duration,
          bytesIn: event.bytesReceived,
          bytesOut: event.bytesSent,
          vpnAddress: event.vpnAddress,
          vpnAddress6: event.vpnAddress6,
          reason: event.missed ? 'missed' : 'disconnect',
        });
        if (!closed) log.warn({ commonName: event.commonName, realAddress: event.realAddress, realPort: event.realPort }, 'no open session record for this disconnect');
      },
      async sessionsRebuilt(instance, live, asOf) {
        const alive = new Set(live.map((s) => `${s.commonName}\0${s.realAddress}\0${s.realPort}`));
        let closed = 0;
        for (const r of await store.openSessions(instance)) {
          // A client whose connect began shortly before the list was taken may have been
          // answered after it, so it is not in the list yet is connected: leave those open.
          if (r.startedAt >= asOf - UNLISTED_MARGIN_MS || alive.has(`${r.commonName}\0${r.realAddress}\0${r.realPort}`)) continue;
          // left while no daemon was watching: when exactly, and the bytes, are unknown
          const now = Date.now();
          await store.closeSession(r.id, r, { endedAt: now, duration: Math.max(0, Math.round((now - r.startedAt) / 1000)), bytesIn: 0, bytesOut: 0, reason: 'missed' });
          closed++;
        }
        if (closed > 0) log.info({ instance, closed }, 'closed session records of clients that left while the daemon was away');
      },
    };
  },
};

export default accounting;

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
import type { PluginDefinition } from '../../plugin-api.ts';

const accounting: PluginDefinition = {
  name: 'accounting',
  setup({ services, log }) {
    const records = services.records;
    if (!records) throw new Error('the accounting plugin needs a store: add a store: section (sqlite: FILE or postgres: ...) to the config');
    return {
      async decided(event, outcome, session) {
        if (outcome.verdict === 'deny') {
          // a session recorded for an accept that a later plugin could not apply never began
          if (session && event.name === 'client-connect') await records.forget(session.id);
          await records.recordDenial({
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
        await records.open(session);
      },
      'learn-address': async (event, ctx) => {
        if (event.operation === 'delete') return;
        // management mode learns a client's address after its connect was answered; the daemon
        // hands over the live session holding it
        if (ctx.session) await records.addAddress(ctx.session.id, event.address.replace(/\/(32|128)$/, ''));
      },
      'client-disconnect': async (event) => {
        // the records service closes the record once, whichever plugin hands the disconnect over first
        if (!(await records.close(event)))
          log.debug({ commonName: event.commonName, realAddress: event.realAddress, realPort: event.realPort }, 'no open session record for this disconnect');
      },
      async sessionsRebuilt(instance, live, asOf) {
        const closed = await records.closeMissed(instance, live, asOf);
        if (closed > 0) log.info({ instance, closed }, 'closed session records of clients that left while the daemon was away');
      },
    };
  },
};

export default accounting;

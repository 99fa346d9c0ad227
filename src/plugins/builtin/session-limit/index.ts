/**
 * @module session-limit
 * Built-in plugin `session-limit`: at most `max` concurrent sessions per user, counted in the
 * store, so the limit holds across every OpenVPN server whose daemon shares it (PostgreSQL). A
 * user is a verified username (one a plugin such as password-auth accepted; a username the
 * client merely sent does not count), else the certificate's common name; the two are separate
 * keys, so username `alice` and common name `alice` have a limit each.
 *
 * The count and the new session's record are one step in the store (a transaction serialised
 * per user), taken when the connect has been accepted by every plugin and before OpenVPN is
 * answered: two connects of one user at the same moment, on one server or two, cannot both
 * slip under the limit. At the limit, `deny-new` refuses the new client (it sees AUTH_FAILED);
 * `disconnect-oldest` admits it and disconnects the user's oldest sessions: directly when this
 * daemon serves them, otherwise through a request in the store that the daemon serving them
 * picks up within `kill-poll` seconds. Hook mode cannot disconnect a client: when the oldest
 * session is one of this daemon's hook-mode clients, the new client is refused instead. List it
 * before `accounting`, so the record is made here, under the limit.
 *
 * `groups` gives the members of a client group (its authentication's groups and the config's
 * `groups:` rules', compared exactly) their own limit; a client in several such groups gets the
 * largest, one in none gets `max`.
 *
 * @example
 * plugins:
 *   - use: session-limit
 *     options: { max: 2, on-exceed: disconnect-oldest, groups: { vpn-admins: 5 } }
 *   - use: accounting
 */
import { errorMessage } from '../../../errors.ts';
import type { LiveSession, PluginDefinition, SessionRecord } from '../../plugin-api.ts';

interface SessionLimitOptions {
  readonly max: number;
  readonly 'on-exceed': 'deny-new' | 'disconnect-oldest';
  readonly 'kill-poll': number;
  /** Client group → the limit of its members. */
  readonly groups?: Readonly<Record<string, number>>;
}

/** A request no daemon took within this time is dropped: its client has surely gone or been replaced. */
const KILL_REQUEST_TTL_MS = 60_000;
/** What the disconnected client is told; HALT makes it stop instead of reconnecting (and pushing the newer one out). */
const KILL_MESSAGE = 'HALT,a newer session of this user replaced this one';

/** Which client connection a session is: instance, common name, real address and port. */
type Connection = Pick<SessionRecord, 'instance' | 'commonName' | 'realAddress' | 'realPort'>;

const sameConnection = (a: Connection, b: Connection) =>
  a.instance === b.instance && a.commonName === b.commonName && a.realAddress === b.realAddress && a.realPort === b.realPort;

const sessionLimit: PluginDefinition<SessionLimitOptions> = {
  name: 'session-limit',
  options: (z) =>
    z
      .object({
        max: z.number().int().min(1),
        'on-exceed': z.enum(['deny-new', 'disconnect-oldest']).default('deny-new'),
        /** Seconds between looks for requests from other daemons to disconnect a client here. */
        'kill-poll': z.number().min(0.2).max(300).default(2),
        /** Client group → at most this many sessions for its members, instead of max. */
        groups: z.record(z.string().min(1).max(256), z.number().int().min(1)).default({}),
      })
      .strict(),
  setup({ options, services, log, instance }) {
    const records = services.records;
    if (!records) throw new Error('the session-limit plugin counts sessions in the store: add a store: section (sqlite: FILE or postgres: ...) to the config');

    /** This daemon's live session for a record: the same id, or after a restart the same connection. */
    const liveFor = (r: Connection & { readonly id?: string }): LiveSession | undefined => {
      const live = services.sessions.list();
      return live.find((s) => s.id === r.id) ?? live.find((s) => sameConnection(s, r));
    };
    const groupLimits = new Map(Object.entries(options.groups ?? {}));
    /** A session's limit: the largest of its groups', else max. */
    const maxFor = (session: LiveSession): number => {
      const own = session.groups.map((g) => groupLimits.get(g)).filter((m): m is number => m !== undefined);
      return own.length > 0 ? Math.max(...own) : options.max;
    };
    const served = () => new Set([instance, ...services.sessions.list().map((s) => s.instance)]);

    /** `live`: this daemon's session for the record (liveFor), looked up once by the caller. */
    const disconnect = async (r: SessionRecord, user: string, live: LiveSession | undefined): Promise<void> => {
      if (!live && !served().has(r.instance)) {
        await records.requestKill({
          sessionId: r.id,
          instance: r.instance,
          commonName: r.commonName,
          realAddress: r.realAddress,
          realPort: r.realPort,
          reason: KILL_MESSAGE,
          requestedAt: Date.now(),
        });
        log.info({ user, instance: r.instance, session: r.id }, 'asked the daemon of another server to disconnect the oldest session');
        return;
      }
      await records.markKilled(r.id);
      if (!live) {
        // served here yet not live: its client left unseen; the record must not count any more
        await records.closeUnseen(r);
        return;
      }
      log.info(
        { user, instance: r.instance, commonName: r.commonName, realAddress: r.realAddress },
        'disconnecting the oldest session: over the session limit',
      );
      await services.kill(live, KILL_MESSAGE).catch(async (err: unknown) => {
        await records.markKilled(r.id, false);
        throw err;
      });
    };

    let polling = false;
    const poll = async () => {
      if (polling) return;
      polling = true;
      try {
        for (const request of await records.takeKillRequests([...served()], Date.now() - KILL_REQUEST_TTL_MS)) {
          const live = liveFor({ ...request, id: request.sessionId });
          if (!live) continue;
          // the record's id: the live session's id is new when this daemon restarted since
          await records.markKilled(request.sessionId);
          log.info(
            { instance: live.instance, commonName: live.commonName, realAddress: live.realAddress },
            'disconnecting a session on request of another server: over the session limit',
          );
          await services.kill(live, request.reason).catch(async (err: unknown) => {
            await records.markKilled(request.sessionId, false);
            throw err;
          });
        }
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'could not act on requests to disconnect clients');
      } finally {
        polling = false;
      }
    };
    const timer = setInterval(() => void poll(), options['kill-poll'] * 1000);
    timer.unref();

    return {
      close: () => clearInterval(timer),

      async decided(event, outcome, session) {
        if (event.name !== 'client-connect' || !session) return;
        if (outcome.verdict === 'deny') {
          // admitted here, then refused by a plugin after this one: it never began
          await records.forget(session.id);
          return;
        }
        if (event.reauth) return;
        const { kind, name: user } = records.limitKey(session);
        const refuse = options['on-exceed'] === 'deny-new';
        const max = maxFor(session);
        const { recorded, others } = await records.claim(session, { max, refuse });
        if (!recorded) {
          log.info({ user, kind, open: others.length, max }, 'over the session limit: the new client is refused');
          throw new Error(`${JSON.stringify(user)} has ${others.length} session(s) open, at most ${max} allowed`);
        }
        const excess = others.length + 1 - max;
        const oldest = others.slice(0, Math.max(0, excess)).map((r) => ({ r, live: liveFor(r) }));
        // Sessions this daemon serves are disconnected before the new client is answered: where
        // that is impossible (hook mode offers no way), the new client is refused instead, so
        // the limit holds. Another server's are asked to go, and the new client is admitted.
        try {
          await Promise.all(oldest.filter((o) => o.live).map((o) => disconnect(o.r, user, o.live)));
        } catch (err) {
          await records.forget(session.id);
          throw new Error(
            `${JSON.stringify(user)} has ${others.length} session(s) open, at most ${max} allowed, and the oldest cannot be disconnected here: ${errorMessage(err)}`,
          );
        }
        for (const { r } of oldest.filter((o) => !o.live)) {
          disconnect(r, user, undefined).catch((err: unknown) =>
            log.warn({ user, instance: r.instance, err: errorMessage(err) }, 'could not disconnect the oldest session'),
          );
        }
      },

      // the records this plugin counts end with their clients: the records service closes each
      // once, also when accounting hands over the same disconnect or rebuild
      'client-disconnect': async (event) => {
        await records.close(event);
      },

      async sessionsRebuilt(rebuiltInstance, live, asOf) {
        await records.closeMissed(rebuiltInstance, live, asOf);
      },
    };
  },
};

export default sessionLimit;

/**
 * @module firewall
 * Built-in plugin `firewall`: per-group firewall for VPN clients through the root stage.
 *
 * What a group may reach lives only in the root-owned root config (`root.yaml`), from which the
 * root stage builds its nft rules; this plugin only says who is in which group. A client's VPN
 * addresses (IPv4 and IPv6) join its groups' sets when OpenVPN learns them and leave when the
 * client disconnects (its conntrack entries are flushed, so open flows stop) or the route is
 * deleted. Traffic from the VPN that no group allows is dropped by the root stage's chain, so
 * a failed add leaves the client with no access: the firewall fails closed by construction.
 * Until the root stage has confirmed that chain (it never started: an untrusted config, sudo
 * refused), every connect is denied with the reason.
 *
 * @example
 * - use: firewall
 *   options:
 *     groups:
 *       staff: { common-names: [alice], usernames: [carol], patterns: ["*.staff"] }
 *       ops: { patterns: ["ops-*"] }
 *       admins: { groups: ["vpn-admins", "Domain Admins"] }   # the client's groups, exactly
 *     default-group: guests
 */
import type { z as Z } from 'zod';
import { compileGlob, MAX_GLOB_NAME } from '../../../util/glob.ts';
import type { ClientIdentity, KernelState, LiveSession, PluginDefinition, RootActions } from '../../plugin-api.ts';

const groupName = /^[a-z][a-z0-9_]{0,23}$/;

function optionsSchema(z: typeof Z) {
  const member = z
    .object({
      /** Exact certificate common names. */
      'common-names': z.array(z.string().min(1).max(64)).default([]),
      /** Exact usernames, verified ones only (a plugin such as password-auth accepted them). */
      usernames: z.array(z.string().min(1).max(256)).default([]),
      /** Globs (`*`, `?`) matched against the whole common name and the whole username. */
      patterns: z.array(z.string().min(1).max(128)).default([]),
      /** The client's groups (from its authentication and the config's `groups:` rules), compared exactly. */
      groups: z.array(z.string().min(1).max(256)).default([]),
    })
    .strict();
  return z
    .object({
      groups: z.record(z.string().regex(groupName, 'a group name is lowercase letters, digits and _, at most 24'), member),
      /** Group for clients no other group names; without it such clients reach nothing. */
      'default-group': z.string().regex(groupName, 'not a group name').optional(),
    })
    .strict()
    .superRefine((o, ctx) => {
      const d = o['default-group'];
      if (d !== undefined && !(d in o.groups)) ctx.addIssue({ code: 'custom', path: ['default-group'], message: `group ${d} is not listed under groups` });
    });
}

export type FirewallOptions = Z.output<ReturnType<typeof optionsSchema>>;

type Who = Partial<Pick<ClientIdentity, 'commonName' | 'username'>> & { readonly groups?: readonly string[] };

/**
 * Which groups a client belongs to: every group that names it or one of the client's groups,
 * else the default group. The username and groups are the session's, so a verified username: a
 * name the client merely sent is no member of anything. A name longer than MAX_GLOB_NAME matches no pattern (`onTooLong` hears of it).
 */
export function membership(options: FirewallOptions, onTooLong?: (name: string) => void): (who: Who) => string[] {
  const groups = Object.entries(options.groups).map(([name, m]) => ({
    name,
    names: new Set(m['common-names']),
    users: new Set(m.usernames),
    patterns: m.patterns.map((p) => compileGlob(p)),
    clientGroups: new Set(m.groups),
  }));
  const fallback = options['default-group'];
  return ({ commonName, username, groups: clientGroups = [] }) => {
    for (const name of [commonName, username]) if (name !== undefined && name.length > MAX_GLOB_NAME) onTooLong?.(name);
    const found = groups
      .filter(
        (g) =>
          (commonName !== undefined && g.names.has(commonName)) ||
          (username !== undefined && g.users.has(username)) ||
          g.patterns.some((p) => (commonName !== undefined && p(commonName)) || (username !== undefined && p(username))) ||
          clientGroups.some((c) => g.clientGroups.has(c)),
      )
      .map((g) => g.name);
    return found.length > 0 || fallback === undefined ? found : [fallback];
  };
}

const isHostAddress = (a: string) => !a.includes('/') && (a.includes(':') ? !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(a) : /^\d+\.\d+\.\d+\.\d+$/.test(a));

/** A client's VPN addresses that are set. */
const addressesOf = (s: { readonly vpnAddress?: string; readonly vpnAddress6?: string }) =>
  [s.vpnAddress, s.vpnAddress6].filter((a): a is string => a !== undefined);

const firewall: PluginDefinition<FirewallOptions> = {
  name: 'firewall',
  options: optionsSchema,
  async setup({ options, services, log }) {
    const root: RootActions | undefined = services.root;
    if (!root || !services.rootRules) throw new Error('the firewall plugin needs the root stage: add a root: section to the config');
    // group names must exist in the root config, or the root stage would refuse every add
    const rules = await services.rootRules();
    const unknown = Object.keys(options.groups).filter((g) => !rules.groups.includes(g));
    if (unknown.length > 0) throw new Error(`group(s) ${unknown.join(', ')} are not defined in ${rules.file}; add them there with their allowed destinations`);
    const groupsOf = membership(options, (name) =>
      log.warn({ length: name.length }, `a name longer than ${MAX_GLOB_NAME} characters matches no group pattern`),
    );
    const allGroups = Object.keys(options.groups);

    // An address is in the sets of the groups of the client holding it, so nothing else needs
    // remembering: where its client is not known any more, it leaves every group's set (a
    // remove of an address a set does not hold changes nothing).
    const add = async (address: string, who: Who, moved: boolean) => {
      const groups = groupsOf(who);
      // an address that moved to another client leaves the sets of the old one's groups first
      if (moved) await leave(address, groups, false);
      await Promise.all(groups.map((g) => root.setAdd(g, address)));
      log.info({ address, groups, commonName: who.commonName }, groups.length ? 'address joined its groups' : 'address is in no group: its traffic is dropped');
    };
    /** Takes an address out of every group's set but `keep`, and flushes its flows when asked. */
    const leave = async (address: string, keep: readonly string[], flush: boolean) => {
      await Promise.all(allGroups.filter((g) => !keep.includes(g)).map((g) => root.setRemove(g, address)));
      if (flush) await root.conntrackFlush(address);
    };
    const remove = async (address: string, flush: boolean) => {
      await leave(address, [], flush);
      log.info({ address }, 'address left the sets');
    };
    const failed = (what: string, address: string) => (err: unknown) => {
      const code = (err as { code?: string }).code;
      log.error({ address, code, err: err instanceof Error ? err.message : String(err) }, `root stage could not ${what}`);
      throw err;
    };

    return {
      // Until the root stage has put the table (and its drop rule) in place, an admitted client
      // would reach everything: nobody is admitted before that.
      'client-connect': async (_event, ctx) => {
        let table = root.tableStatus?.() ?? { ready: true };
        if (!table.ready && table.pending && root.tableSettled) {
          // the root stage is starting (the daemon just started): wait for it, within this
          // handler's time limit, rather than turn the first clients away
          log.info({ reason: table.reason }, 'a connect waits for the root stage to put the nft table in place');
          table = await root.tableSettled(ctx.signal);
        }
        if (table.ready) return;
        ctx.deny(
          `firewall: the nft table is not in place, so no client is admitted: ${table.reason ?? 'the root stage has not confirmed it'}`,
          'the firewall is not ready',
        );
      },
      'learn-address': async (event, ctx) => {
        const address = event.address.replace(/\/(32|128)$/, '');
        if (!isHostAddress(address)) return;
        const session = ctx.session;
        if (event.operation === 'delete') {
          // a reaped route whose address a live client holds again is not removed
          if (session) return;
          await remove(address, true).catch(failed('remove an address', address));
          return;
        }
        // without a session (a client the daemon does not know), the name OpenVPN gives decides
        const who: Who = session ?? { commonName: event.commonName };
        await add(address, who, event.operation === 'update').catch((err: unknown) => {
          log.error(
            { address, code: (err as { code?: string }).code, err: err instanceof Error ? err.message : String(err) },
            'root stage could not add an address',
          );
          // hook mode with wait: true vetoes the route; otherwise the drop rule keeps it closed
          ctx.deny(`firewall: root stage refused ${address}: ${err instanceof Error ? err.message : String(err)}`);
        });
      },
      'client-disconnect': async (event) => {
        for (const address of addressesOf(event)) await remove(address, true).catch(failed('remove an address', address));
      },
      down: async (event) => {
        // OpenVPN stopped: its clients are gone, whatever disconnects were missed; the daemon
        // ends their sessions only after this handler
        const mine = services.sessions
          .list()
          .filter((s) => s.instance === event.instance)
          .flatMap(addressesOf);
        for (const address of mine) await leave(address, [], false).catch(failed('remove an address', address));
        log.info({ instance: event.instance, removed: mine.length }, 'OpenVPN went down: its addresses left the sets');
      },
      kernelState(sessions: readonly LiveSession[]): KernelState {
        const sets: Record<string, string[]> = {};
        for (const s of sessions) {
          const groups = groupsOf(s);
          for (const address of addressesOf(s)) for (const g of groups) (sets[g] ??= []).push(address);
        }
        return { sets };
      },
    };
  },
};

export default firewall;

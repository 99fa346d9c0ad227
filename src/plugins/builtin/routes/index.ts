/**
 * @module routes
 * Built-in plugin `routes`: networks behind a client (site-to-site). For each such client it
 * sends OpenVPN the `iroute` / `iroute-ipv6` lines (so OpenVPN hands that network's packets to
 * this client) and adds the kernel route into OpenVPN's tun device through the root stage (so
 * the server sends them to OpenVPN at all); both end when the client disconnects. Networks are
 * checked when the config loads, and must lie inside the root config's `routes.allowed`.
 *
 * `groups` names networks behind every client of a client group (its authentication's groups
 * and the config's `groups:` rules', compared exactly): redundant routers of one site, say.
 * OpenVPN sends such a network to the member that connected last; the kernel route stays while
 * any member is connected.
 *
 * @example
 * - use: routes
 *   options:
 *     clients:
 *       branch-paris: [192.168.10.0/24, "fd00:10::/64"]
 *     groups:
 *       lyon-routers: [192.168.20.0/24]
 */
import type { z as Z } from 'zod';
import { contains, parseNetwork, type Network } from '../../../util/ip-address.ts';
import type { KernelState, LiveSession, PluginDefinition, RouteSpec } from '../../plugin-api.ts';

function optionsSchema(z: typeof Z) {
  const network = z.string().transform((text, ctx) => {
    try {
      return parseNetwork(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
  return z
    .object({
      /** OpenVPN's tun device; by default the `dev` OpenVPN reports with each client. */
      dev: z
        .string()
        .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/, 'not an interface name')
        .optional(),
      /** Common name → the networks behind that client. */
      clients: z.record(z.string().min(1).max(64), z.array(network).min(1)).default({}),
      /** Client group → the networks behind each of its members. */
      groups: z.record(z.string().min(1).max(256), z.array(network).min(1)).default({}),
    })
    .strict()
    .superRefine((o, ctx) => {
      // one network behind two entries would make OpenVPN's choice arbitrary
      const owner = new Map<string, string>();
      for (const field of ['clients', 'groups'] as const) {
        for (const [name, nets] of Object.entries(o[field])) {
          nets.forEach((n, i) => {
            const other = owner.get(n.text);
            if (other !== undefined) ctx.addIssue({ code: 'custom', path: [field, name, i], message: `${n.text} is already behind ${other}` });
            owner.set(n.text, field === 'clients' ? name : `group ${name}`);
          });
        }
      }
    });
}

type RoutesOptions = Z.output<ReturnType<typeof optionsSchema>>;

/** Who a client is, for its networks: its common name and groups. */
type Who = Pick<LiveSession, 'commonName'> & { readonly groups?: readonly string[] };

/** The config line that tells OpenVPN a network is behind this client. */
export function irouteLine(n: Network): string {
  if (n.family === 6) return `iroute-ipv6 ${n.text}`;
  const mask = n.prefix === 0 ? 0 : (0xffffffff << (32 - n.prefix)) >>> 0;
  return `iroute ${n.address} ${[24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join('.')}`;
}

const routes: PluginDefinition<RoutesOptions> = {
  name: 'routes',
  options: optionsSchema,
  async setup({ options, services, log }) {
    const root = services.root;
    if (!root || !services.rootRules) throw new Error('the routes plugin needs the root stage: add a root: section to the config');
    const rules = await services.rootRules();
    const allowed = rules.allowedRoutes.map((a) => parseNetwork(a));
    for (const [field, entries] of [
      ['', options.clients],
      ['group ', options.groups],
    ] as const) {
      for (const [name, nets] of Object.entries(entries)) {
        for (const n of nets) {
          if (!allowed.some((a) => contains(a, n))) throw new Error(`${n.text} (behind ${field}${name}) is outside routes.allowed of ${rules.file}`);
        }
      }
    }
    // after a daemon restart the device of rebuilt sessions is unknown: the only VPN interface then
    const onlyDevice = options.dev ?? (rules.vpnInterfaces.length === 1 ? rules.vpnInterfaces[0] : undefined);
    /** The device each connected site's routes point into, by session id. */
    const devices = new Map<string, string>();
    const byGroup = new Map(Object.entries(options.groups));
    /** The networks behind a client: by its common name, then by its groups, each once. */
    const networksOf = (who: Who): Network[] => {
      const nets = [...(options.clients[who.commonName] ?? []), ...(who.groups ?? []).flatMap((g) => byGroup.get(g) ?? [])];
      return nets.filter((n, i) => nets.findIndex((m) => m.text === n.text) === i);
    };
    const specs = (nets: readonly Network[], dev: string): RouteSpec[] => nets.map((n) => ({ network: n.text, dev }));
    /** Takes back a leaving client's routes that no other live client needs (a group's member still there). */
    const release = async (who: Who, id: string | undefined, dev: string) => {
      // other live clients routed into the same device
      const others = services.sessions.list().filter((s) => s.id !== id && (devices.get(s.id) ?? dev) === dev);
      for (const r of specs(networksOf(who), dev)) {
        if (others.some((s) => networksOf(s).some((n) => n.text === r.network))) continue;
        await root.routeRemove(r);
      }
    };

    return {
      'client-connect': (event, ctx) => {
        for (const n of networksOf({ commonName: event.commonName, groups: ctx.session?.groups })) ctx.config(irouteLine(n));
      },
      async decided(event, outcome, session) {
        if (event.name !== 'client-connect' || !session) return;
        const nets = networksOf(session);
        if (nets.length === 0) return;
        if (outcome.verdict === 'deny') {
          // a later plugin could not record the accept: take back what was added
          const dev = devices.get(session.id);
          devices.delete(session.id);
          if (dev) await release(session, session.id, dev);
          return;
        }
        const dev = options.dev ?? event.env.dev;
        if (!dev) throw new Error('routes: OpenVPN did not say its device; set the dev option');
        devices.set(session.id, dev);
        for (const r of specs(nets, dev)) await root.routeAdd(r);
        log.info({ commonName: session.commonName, networks: nets.map((n) => n.text), dev }, 'routes to the networks behind the client added');
      },
      'client-disconnect': async (event, ctx) => {
        const who: Who = ctx.session ?? event;
        if (networksOf(who).length === 0) return;
        const id = ctx.session?.id;
        const dev = (id === undefined ? undefined : devices.get(id)) ?? options.dev ?? event.env.dev;
        if (id !== undefined) devices.delete(id);
        if (!dev) return;
        await release(who, id, dev);
        log.info({ commonName: event.commonName }, 'routes to the networks behind the client removed');
      },
      kernelState(sessions: readonly LiveSession[]): KernelState {
        // a group's network behind several members is one route
        const wanted = new Map<string, RouteSpec>();
        for (const s of sessions) {
          const dev = devices.get(s.id) ?? onlyDevice;
          if (dev) for (const r of specs(networksOf(s), dev)) wanted.set(`${r.network} ${r.dev}`, r);
        }
        return { routes: [...wanted.values()] };
      },
    };
  },
};

export default routes;

/**
 * @module routes
 * Built-in plugin `routes`: networks behind a client (site-to-site). For each such client it
 * sends OpenVPN the `iroute` / `iroute-ipv6` lines (so OpenVPN hands that network's packets to
 * this client) and adds the kernel route into OpenVPN's tun device through the root stage (so
 * the server sends them to OpenVPN at all); both end when the client disconnects. Networks are
 * checked when the config loads, and must lie inside the root config's `routes.allowed`.
 *
 * @example
 * - use: routes
 *   options:
 *     clients:
 *       branch-paris: [192.168.10.0/24, "fd00:10::/64"]
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
      clients: z.record(z.string().min(1).max(64), z.array(network).min(1)),
    })
    .strict()
    .superRefine((o, ctx) => {
      // one network behind two clients would make OpenVPN's choice arbitrary
      const owner = new Map<string, string>();
      for (const [cn, nets] of Object.entries(o.clients)) {
        nets.forEach((n, i) => {
          const other = owner.get(n.text);
          if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['clients', cn, i], message: `${n.text} is already behind ${other}` });
          owner.set(n.text, cn);
        });
      }
    });
}

type RoutesOptions = Z.output<ReturnType<typeof optionsSchema>>;

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
    for (const [cn, nets] of Object.entries(options.clients)) {
      for (const n of nets) {
        if (!allowed.some((a) => contains(a, n))) {
          throw new Error(`${n.text} (behind ${cn}) is outside routes.allowed of ${rules.file}`);
        }
      }
    }
    // after a daemon restart the device of rebuilt sessions is unknown: the only VPN interface then
    const onlyDevice = options.dev ?? (rules.vpnInterfaces.length === 1 ? rules.vpnInterfaces[0] : undefined);
    /** The device each connected site's routes point into, by common name. */
    const devices = new Map<string, string>();
    const specs = (cn: string, dev: string): RouteSpec[] => (options.clients[cn] ?? []).map((n) => ({ network: n.text, dev }));

    return {
      'client-connect': (event, ctx) => {
        for (const n of options.clients[event.commonName] ?? []) ctx.config(irouteLine(n));
      },
      async decided(event, outcome, session) {
        if (event.name !== 'client-connect' || !session || !options.clients[session.commonName]) return;
        if (outcome.verdict === 'deny') {
          // a later plugin could not record the accept: take back what was added
          const dev = devices.get(session.commonName);
          devices.delete(session.commonName);
          if (dev) for (const r of specs(session.commonName, dev)) await root.routeRemove(r);
          return;
        }
        const dev = options.dev ?? event.env.dev;
        if (!dev) throw new Error('routes: OpenVPN did not say its device; set the dev option');
        devices.set(session.commonName, dev);
        for (const r of specs(session.commonName, dev)) await root.routeAdd(r);
        log.info(
          { commonName: session.commonName, networks: specs(session.commonName, dev).map((r) => r.network), dev },
          'routes to the networks behind the client added',
        );
      },
      'client-disconnect': async (event) => {
        const nets = options.clients[event.commonName];
        if (!nets) return;
        const dev = devices.get(event.commonName) ?? options.dev ?? event.env.dev;
        devices.delete(event.commonName);
        if (!dev) return;
        for (const r of specs(event.commonName, dev)) await root.routeRemove(r);
        log.info({ commonName: event.commonName }, 'routes to the networks behind the client removed');
      },
      kernelState(sessions: readonly LiveSession[]): KernelState {
        const wanted: RouteSpec[] = [];
        for (const s of sessions) {
          const dev = devices.get(s.commonName) ?? onlyDevice;
          if (dev) wanted.push(...specs(s.commonName, dev));
        }
        return { routes: wanted };
      },
    };
  },
};

export default routes;

/**
 * @module root-config
 * The root stage's own config file (e.g. `/etc/flexscript/root.yaml`), owned by root and read
 * only by `flexscript-root`. It is the only source of firewall rules, group names, VPN
 * interfaces and the networks routes may go into: a request can only name things listed here.
 * Unknown keys are errors, reported as `FILE:LINE: field: problem`.
 *
 * @example
 * table: flexscript
 * vpn-interfaces: [tun0]
 * vpn-networks: [10.8.0.0/24, "fd00:8::/64"]
 * groups:
 *   staff:
 *     allow:
 *       - { to: 10.0.0.0/24, protocol: tcp, ports: [22, 443, "8000-8100"] }
 * routes:
 *   proto: 250
 *   allowed: [10.9.0.0/16]
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ROOT_SETUP_CODES } from './error-codes.ts';
import { contains, parseNetwork, type Network } from './ip-address.ts';
import { type ConfigProblem, formatProblem } from './source-location.ts';
import { formatField, lineOf, parseYaml } from './yaml-location.ts';

type Protocol = 'tcp' | 'udp' | 'icmp' | 'any';
/** One port, or an inclusive range. */
type PortRange = number | readonly [number, number];

/** Traffic a group's members may send: to one network, one protocol, optionally some ports. */
export interface AllowRule {
  readonly to: Network;
  readonly protocol: Protocol;
  /** Only for tcp and udp; absent means every port. */
  readonly ports?: readonly PortRange[];
}

interface GroupConfig {
  readonly name: string;
  readonly allow: readonly AllowRule[];
}

export interface RootConfig {
  readonly file: string;
  /** nft table, family inet. */
  readonly table: string;
  /** Interfaces VPN traffic enters by; also the only devices a route may name. */
  readonly vpnInterfaces: readonly string[];
  /**
   * OpenVPN's client address pools (`server`, `server-ipv6`): the only addresses a request may
   * name (set elements, conntrack flushes, route gateways).
   */
  readonly vpnNetworks: readonly Network[];
  readonly groups: ReadonlyMap<string, GroupConfig>;
  readonly routes: {
    /** Marks the routes this stage manages (`ip route ... proto N`). */
    readonly proto: number;
    /** Parent networks a route must lie inside. */
    readonly allowed: readonly Network[];
    /** Routing tables a route may go into; the first is the default. */
    readonly tables: readonly number[];
  };
}

export type RootConfigProblem = ConfigProblem;

/** The root config is missing or invalid; carries every problem found. */
export class RootConfigError extends Error {
  readonly code = ROOT_SETUP_CODES.CONFIG_INVALID.code;
  readonly problems: readonly RootConfigProblem[];
  constructor(problems: readonly RootConfigProblem[], options?: { cause?: unknown }) {
    super(problems.map(formatProblem).join('\n'), options);
    this.name = 'RootConfigError';
    this.problems = problems;
  }
}

/** Bounded so a set name (`g_<group>_v4`) stays short and needs no quoting anywhere. */
const groupName = /^[a-z][a-z0-9_]{0,23}$/;

const network = z.string().transform((s, ctx) => {
  try {
    const n = parseNetwork(s);
    if (n.prefix === 0) throw new Error('a /0 network is never allowed here');
    return n;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** Ranges that are never a VPN client's: loopback, multicast, link-local, reserved, mapped. */
const NOT_CLIENTS = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4', '::/127', '::ffff:0:0/96', 'fe80::/10', 'ff00::/8'].map((n) =>
  parseNetwork(n),
);

const vpnNetwork = network.superRefine((n, ctx) => {
  const clash = NOT_CLIENTS.find((bad) => contains(bad, n) || contains(n, bad));
  if (clash) ctx.addIssue({ code: 'custom', message: `${n.text} overlaps ${clash.text}, which holds no VPN clients` });
});

const MISSING_VPN_NETWORKS =
  "required: list OpenVPN's client address pools (its `server` and `server-ipv6` networks), e.g. vpn-networks: [10.8.0.0/24]; the root stage acts only on addresses inside them";

const port = z.union(
  [
    z.number().int().min(1).max(65535),
    z
      .string()
      .regex(/^[0-9]{1,5}-[0-9]{1,5}$/)
      .transform((s, ctx) => {
        const [lo, hi] = s.split('-').map(Number) as [number, number];
        if (lo < 1 || hi > 65535 || lo >= hi) {
          ctx.addIssue({ code: 'custom', message: 'a range is "LOW-HIGH" with 1 <= LOW < HIGH <= 65535' });
          return z.NEVER;
        }
        return [lo, hi] as const;
      }),
  ],
  { error: 'a port is a number 1-65535 or a range "LOW-HIGH"' },
);

const allowRule = z
  .object({
    to: network,
    protocol: z.enum(['tcp', 'udp', 'icmp', 'any']).default('any'),
    ports: z.array(port).min(1).max(64).optional(),
  })
  .strict()
  .refine((r) => r.ports === undefined || r.protocol === 'tcp' || r.protocol === 'udp', { message: 'ports need protocol tcp or udp', path: ['ports'] });

const schema = z
  .object({
    table: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,31}$/, 'lowercase letters, digits and _, at most 32')
      .default('flexscript'),
    'vpn-interfaces': z
      .array(z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/, 'not an interface name (letters, digits, _ . -, at most 15)'))
      .min(1, 'name at least one VPN interface')
      .max(64),
    'vpn-networks': z
      .array(vpnNetwork, { error: (issue) => (issue.input === undefined ? MISSING_VPN_NETWORKS : undefined) })
      .min(1, 'name at least one VPN network')
      .max(64),
    groups: z
      .record(
        z.string().regex(groupName, 'a group name is lowercase letters, digits and _, at most 24'),
        z.object({ allow: z.array(allowRule).max(256).default([]) }).strict(),
      )
      .default({}),
    routes: z
      .object({
        proto: z.number().int().min(5, 'protocols 0-4 belong to the kernel').max(255).default(250),
        allowed: z.array(network).max(256).default([]),
        tables: z.array(z.number().int().min(1).max(0xfffffffe)).min(1).max(64).default([254]),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** A config written before vpn-networks existed: reported next to vpn-interfaces, where it belongs. */
function missingVpnNetworks(issue: { readonly path: readonly PropertyKey[]; readonly message: string }): boolean {
  return issue.path.length === 1 && issue.path[0] === 'vpn-networks' && issue.message === MISSING_VPN_NETWORKS;
}

/** Parses and validates the root config's text; `file` names it in messages. */
export function parseRootConfig(text: string, file: string): RootConfig {
  const yaml = parseYaml(text, file);
  if (yaml.problems) throw new RootConfigError(yaml.problems);
  const { doc, counter } = yaml;
  const result = schema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new RootConfigError(
      result.error.issues
        .flatMap((issue) =>
          issue.code === 'unrecognized_keys'
            ? issue.keys.map((k) => ({ file, line: lineOf(doc, counter, issue.path, k), field: formatField([...issue.path, k]), problem: 'unknown key' }))
            : [
                {
                  file,
                  line: lineOf(doc, counter, missingVpnNetworks(issue) ? ['vpn-interfaces'] : issue.path),
                  field: formatField(issue.path),
                  problem: issue.message,
                },
              ],
        )
        .sort((a, b) => a.line - b.line),
    );
  }
  const c = result.data;
  return {
    file,
    table: c.table,
    vpnInterfaces: [...new Set(c['vpn-interfaces'])],
    vpnNetworks: [...new Map(c['vpn-networks'].map((n) => [n.text, n])).values()],
    groups: new Map(Object.entries(c.groups).map(([name, g]) => [name, { name, allow: g.allow }])),
    routes: { proto: c.routes.proto, allowed: c.routes.allowed, tables: [...new Set(c.routes.tables)] },
  };
}

/** Reads and validates the root config file. */
export async function loadRootConfig(file: string): Promise<RootConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RootConfigError([{ file, line: 1, field: '', problem: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
  if (text.length > 1024 * 1024) throw new RootConfigError([{ file, line: 1, field: '', problem: 'larger than 1 MiB' }]);
  return parseRootConfig(text, file);
}

/**
 * @module options
 * The options of the `client-config` plugin and everything checked when the config loads:
 * every push option and config line, every static address (inside the VPN network, outside the
 * dynamic pool, not taken twice), every group a user names. The result is ready to serve: each
 * user's and group's config lines, already built and checked.
 */
import { isAbsolute } from 'node:path';
import type { z as Z } from 'zod';
import { pushLine } from '../../../util/config-lines.ts';
import { parseAddress, parseNetwork, contains, type HostAddress } from '../../../util/ip-address.ts';
import { configProblem, pushProblem } from './config-lines.ts';
import { readServerConfig } from './openvpn-server-config.ts';
import { defaultPool, ifconfigIpv6PushLine, ifconfigPushLine, poolProblem, reservationProblem, type Topology, type VpnNetwork } from './vpn-network.ts';

const GROUP_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export function optionsSchema(z: typeof Z) {
  const lines = z.array(z.string()).default([]);
  const group = z
    .object({
      /** Who is in the group, besides users that name it under their groups:. */
      members: z
        .object({
          'common-names': z.array(z.string().min(1).max(64)).default([]),
          /** Verified usernames only. */
          usernames: z.array(z.string().min(1).max(256)).default([]),
          /** Globs (`*`, `?`) matched against the whole common name and the whole username. */
          patterns: z.array(z.string().min(1).max(128)).default([]),
          /** The client's groups (from its authentication and the config's `groups:` rules), compared exactly. */
          groups: z.array(z.string().min(1).max(256)).default([]),
        })
        .strict()
        .default({ 'common-names': [], usernames: [], patterns: [], groups: [] }),
      push: lines,
      config: lines,
    })
    .strict();
  const user = z
    .object({
      address: z.string().optional(),
      address6: z.string().optional(),
      groups: z.array(z.string()).default([]),
      push: lines,
      config: lines,
    })
    .strict();
  return z
    .object({
      /** OpenVPN's server config, to read `server`, `ifconfig-pool`, `topology`, `server-ipv6` from. */
      'openvpn-config': z.string().refine(isAbsolute, 'give an absolute path').optional(),
      /** Or the same by hand: the VPN network (`server`), */
      network: z.string().optional(),
      /** the dynamic pool, `START-END` (`ifconfig-pool`; default: what `server` makes), */
      pool: z
        .string()
        .regex(/^[0-9.]+-[0-9.]+$/, 'expected START-END, e.g. 10.8.0.100-10.8.0.200')
        .optional(),
      /** OpenVPN's topology (net30 is OpenVPN 2.6's default when the server config names none). */
      topology: z.enum(['subnet', 'net30']).default('subnet'),
      /** `server-ipv6`, for address6. */
      network6: z.string().optional(),
      /** Deny clients that are neither a user nor in a group (OpenVPN's ccd-exclusive). */
      exclusive: z.boolean().default(false),
      /** Whether users: are common names or usernames (verified ones: a claim matches nothing). */
      match: z.enum(['common-name', 'username']).default('common-name'),
      groups: z.record(z.string().regex(GROUP_NAME, 'a group name is lowercase letters, digits, - and _, at most 32'), group).default({}),
      users: z.record(z.string().min(1).max(256), user).default({}),
    })
    .strict()
    .transform((o, ctx) => {
      const { value, issues } = resolveOptions(o);
      for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      return issues.length > 0 ? z.NEVER : value;
    });
}

interface RawOptions {
  'openvpn-config'?: string;
  network?: string;
  pool?: string;
  topology: Topology;
  network6?: string;
  exclusive: boolean;
  match: 'common-name' | 'username';
  groups: Record<
    string,
    { members: { 'common-names': string[]; usernames: string[]; patterns: string[]; groups: string[] }; push: string[]; config: string[] }
  >;
  users: Record<string, { address?: string; address6?: string; groups: string[]; push: string[]; config: string[] }>;
}

interface GroupEntry {
  readonly name: string;
  readonly commonNames: ReadonlySet<string>;
  readonly usernames: ReadonlySet<string>;
  readonly patterns: readonly string[];
  /** Client groups whose members are in this group. */
  readonly clientGroups: ReadonlySet<string>;
  /** Checked config lines, in order: config lines, then pushes. */
  readonly lines: readonly string[];
}

interface UserEntry {
  readonly groups: readonly string[];
  /** Checked config lines: addresses, config lines, then pushes. */
  readonly lines: readonly string[];
  readonly address?: string;
}

export interface ClientConfigOptions {
  readonly exclusive: boolean;
  readonly match: 'common-name' | 'username';
  readonly vpn?: VpnNetwork;
  /** In config order: a client's group lines come in this order. */
  readonly groups: readonly GroupEntry[];
  readonly users: ReadonlyMap<string, UserEntry>;
}

type Path = (string | number)[];
interface Issue {
  readonly path: Path;
  readonly message: string;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The VPN network from openvpn-config or network/pool/topology, or undefined if neither is given. */
function vpnNetwork(o: RawOptions, issue: (path: Path, message: string) => void): VpnNetwork | undefined {
  if (o['openvpn-config'] !== undefined) {
    for (const k of ['network', 'pool', 'network6'] as const)
      if (o[k] !== undefined) issue([k], 'give either openvpn-config or network/pool/network6, not both');
    try {
      return readServerConfig(o['openvpn-config']);
    } catch (err) {
      issue(['openvpn-config'], errorText(err));
      return undefined;
    }
  }
  if (o.network === undefined) {
    if (o.pool !== undefined) issue(['pool'], 'a pool needs network');
    return undefined;
  }
  let vpn: VpnNetwork;
  try {
    const network = parseNetwork(o.network);
    if (network.family !== 4) throw new Error(`${o.network} is not an IPv4 network`);
    let pool = defaultPool(network, o.topology);
    if (o.pool !== undefined) {
      const [start, end] = o.pool.split('-');
      try {
        pool = { start: parseAddress(start), end: parseAddress(end) };
      } catch (err) {
        issue(['pool'], errorText(err));
        return undefined;
      }
    }
    vpn = { network, topology: o.topology, pool };
  } catch (err) {
    issue(['network'], errorText(err));
    return undefined;
  }
  const problem = poolProblem(vpn);
  if (problem) {
    issue(['pool'], problem);
    return undefined;
  }
  if (o.network6 !== undefined) {
    try {
      const network6 = parseNetwork(o.network6);
      if (network6.family !== 6) throw new Error(`${o.network6} is not an IPv6 network`);
      return { ...vpn, network6 };
    } catch (err) {
      issue(['network6'], errorText(err));
    }
  }
  return vpn;
}

/** Checks everything and builds the lines; `issues` lists each problem at its path. */
function resolveOptions(o: RawOptions): { value: ClientConfigOptions; issues: Issue[] } {
  const issues: Issue[] = [];
  const issue = (path: Path, message: string) => issues.push({ path, message });
  const vpn = vpnNetwork(o, issue);

  const checked = (path: Path, entry: { push: string[]; config: string[] }): string[] => {
    const out: string[] = [];
    entry.config.forEach((line, i) => {
      const p = configProblem(line);
      if (p) issue([...path, 'config', i], p);
      else out.push(line.trim());
    });
    entry.push.forEach((option, i) => {
      const p = pushProblem(option);
      if (p) issue([...path, 'push', i], p);
      else out.push(pushLine(option.trim()));
    });
    return out;
  };

  const groups: GroupEntry[] = Object.entries(o.groups).map(([name, g]) => ({
    name,
    commonNames: new Set(g.members['common-names']),
    usernames: new Set(g.members.usernames),
    patterns: g.members.patterns,
    clientGroups: new Set(g.members.groups),
    lines: checked(['groups', name], g),
  }));

  const taken = new Map<string, string>();
  const users = new Map<string, UserEntry>();
  for (const [name, u] of Object.entries(o.users)) {
    const at: Path = ['users', name];
    const lines: string[] = [];
    u.groups.forEach((g, i) => {
      if (!(g in o.groups)) issue([...at, 'groups', i], `unknown group ${JSON.stringify(g)} (groups: ${Object.keys(o.groups).join(', ') || 'none'})`);
    });
    const reserve = (
      field: 'address' | 'address6',
      text: string,
      check: (a: HostAddress) => { problem?: string; key: string },
      line: (a: HostAddress) => string,
    ) => {
      let a: HostAddress;
      try {
        a = parseAddress(text);
      } catch (err) {
        return issue([...at, field], errorText(err));
      }
      const { problem, key } = check(a);
      if (problem) return issue([...at, field], problem);
      const other = taken.get(key);
      if (other !== undefined) return issue([...at, field], `${a.text} is already reserved for ${other}`);
      taken.set(key, name);
      lines.push(line(a));
    };
    if (u.address !== undefined) {
      if (!vpn) issue([...at, 'address'], 'a static address needs the VPN network: set openvpn-config, or network (and pool)');
      else
        reserve(
          'address',
          u.address,
          (a) => {
            const r = reservationProblem(vpn, a);
            return { problem: r.problem, key: `4:${r.key}` };
          },
          (a) => ifconfigPushLine(vpn, a),
        );
    }
    if (u.address6 !== undefined) {
      const network6 = vpn?.network6;
      if (!network6) issue([...at, 'address6'], 'a static IPv6 address needs network6 (or server-ipv6 in openvpn-config)');
      else
        reserve(
          'address6',
          u.address6,
          (a) => ({
            key: `6:${a.bits}`,
            problem: !contains(network6, a)
              ? `${a.text} is outside the VPN network ${network6.text}`
              : a.bits === network6.bits || a.bits === network6.bits + 1n
                ? `${a.text} is the network's or the server's address`
                : undefined,
          }),
          (a) => ifconfigIpv6PushLine(network6, a),
        );
    }
    lines.push(...checked(at, u));
    users.set(name, { groups: u.groups, lines, ...(u.address !== undefined ? { address: u.address } : {}) });
  }
  return { value: { exclusive: o.exclusive, match: o.match, vpn, groups, users }, issues };
}

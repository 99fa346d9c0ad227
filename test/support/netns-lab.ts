/**
 * A mode lab inside a throwaway network namespace, with the root stage for real: a root config
 * in a root-owned folder, a temporary sudoers drop-in for nobody, OpenVPN, its clients and the
 * daemon (both nobody) in the namespace, so the root stage the daemon starts through sudo
 * changes that namespace's nftables and routes and never the host's. Everything is removed
 * after the test, also when it fails.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { DaemonEvent } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { rootCommand } from '../../src/root/sudoers.ts';
import { installSudoers, rootStagesOf, run, runOk, trustedTempDir, uniqueSuffix } from '../root/harness.ts';
import { modeLab, type Mode, type ModeLab, type ModeLabOptions } from '../e2e/mode-lab.ts';

export const TABLE = 'fxs_e2e';
export const ROUTE_PROTO = 250;

/**
 * The root stage has put its nft table in place: the first reconcile after a start, or the
 * `ensure` that goes with it, succeeded.
 */
export const tableInPlace = (e: DaemonEvent): boolean =>
  e.channel === 'root-action' && (e.data.action === 'reconcile' || e.data.action === 'ensure') && e.data.code === undefined;

export interface NetnsLab {
  /** OpenVPN, clients and daemon (its server and daemon change when restarted). */
  readonly h: ModeLab;
  readonly netns: string;
  readonly dev: string;
  readonly rootConfig: string;
  /** OpenVPN's status file, when asked for. */
  readonly statusFile: string;
  /** Elements of a group's IPv4 (or IPv6) set, sorted. */
  setElements(group: string, family?: 4 | 6): Promise<string[]>;
  /** Kernel routes the root stage manages in the namespace. */
  routes(): Promise<{ dst: string; dev?: string }[]>;
  /** Pids of the running root stages of this lab. */
  rootPids(): Promise<number[]>;
  ruleset(): Promise<string>;
}

/** The root config of the tests: what each group may reach, and where routes may go. */
function rootYaml(dev: string): string {
  return `# written by the end-to-end test
table: ${TABLE}
vpn-interfaces: [${dev}]
# the lab's client pools (10.77-96.N.0/24, and the tests' server-ipv6 networks)
vpn-networks: [10.64.0.0/10, "fd00::/16"]
groups:
  staff:
    allow:
      - { to: 10.0.0.0/24, protocol: tcp, ports: [22, 443] }
  ops:
    allow:
      - { to: 10.0.1.0/24, protocol: icmp }
  guests:
    allow: []
routes:
  proto: ${ROUTE_PROTO}
  allowed: [10.200.0.0/16, "fd00:200::/48"]
`;
}

export interface NetnsLabOptions extends ModeLabOptions {
  /** Hook mode: `learn-address: connect` (no learn-address hook; addresses reported at connect). */
  readonly learnAtConnect?: boolean;
  /**
   * Runs once the namespace is up, before OpenVPN and the daemon: for what they must reach
   * inside it (a server started there). The options it returns replace those given.
   */
  readonly inNamespace?: (netns: string) => Promise<ModeLabOptions>;
}

export async function netnsLab(t: TestContext, mode: Mode, given: NetnsLabOptions = {}): Promise<NetnsLab> {
  const netns = `fxs-e2e-${uniqueSuffix()}`;
  const dev = `fxe${uniqueSuffix().slice(0, 6)}`;
  const dir = await trustedTempDir('netns-lab-');
  const rootConfig = join(dir, 'root.yaml');
  let sudoers = '';
  const rootPids = () => rootStagesOf(rootConfig);
  // registered first, so it runs after the lab's own cleanup has stopped its processes
  t.after(async () => {
    for (const pid of await rootPids()) process.kill(pid, 'SIGKILL');
    if (sudoers) await rm(sudoers, { force: true });
    await run(['ip', 'netns', 'del', netns]);
    await rm(dir, { recursive: true, force: true });
  });
  await runOk(['ip', 'netns', 'add', netns]);
  await runOk(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  const o: NetnsLabOptions = { ...given, ...(await given.inNamespace?.(netns)) };
  await writeFile(rootConfig, rootYaml(dev), { mode: 0o644 });
  sudoers = await installSudoers('nobody', rootCommand(rootConfig), dir);
  const h = await modeLab(t, mode, {
    ...o,
    netns,
    serverDev: dev,
    extraConfig: [
      // right after the hook: section's lines
      ...(o.learnAtConnect ? ['  learn-address: connect'] : []),
      'root:',
      `  config: ${rootConfig}`,
      '  timeout: 20s',
      ...(o.extraConfig ?? []),
    ],
  });
  // the firewall admits no one before the root stage has put its table in place
  await h.daemon.waitForEvent('the root stage to put the nft table in place', tableInPlace, 60_000);
  const inNs = (argv: string[]) => runOk(['ip', 'netns', 'exec', netns, ...argv]);
  return {
    h,
    netns,
    dev,
    rootConfig,
    statusFile: h.statusFile,
    async setElements(group: string, family: 4 | 6 = 4) {
      // a missing table or set is an error, never an empty set: the firewall admits no one without them
      const doc = JSON.parse(await inNs(['nft', '-j', 'list', 'set', 'inet', TABLE, `g_${group}_v${family}`])) as { nftables: { set?: { elem?: string[] } }[] };
      const set = doc.nftables.find((i) => i.set)?.set;
      if (!set) throw new Error(`nft listed no set ${TABLE} g_${group}_v${family}`);
      return [...(set.elem ?? [])].sort();
    },
    async routes() {
      return JSON.parse(await inNs(['ip', '-j', 'route', 'show', 'proto', String(ROUTE_PROTO)])) as { dst: string; dev?: string }[];
    },
    rootPids,
    ruleset: () => inNs(['nft', '-j', 'list', 'ruleset']),
  };
}

/** Waits until every named group's IPv4 set holds exactly the given addresses (in any order). */
export async function setsBecome(n: NetnsLab, want: Readonly<Record<string, readonly string[]>>, what: string, timeoutMs = 60_000): Promise<void> {
  let last: Record<string, string[]> = {};
  await waitFor(
    what,
    async () => {
      last = Object.fromEntries(await Promise.all(Object.keys(want).map(async (g) => [g, await n.setElements(g)] as const)));
      return Object.entries(want).every(([g, a]) => JSON.stringify(last[g]) === JSON.stringify([...a].sort()));
    },
    { timeoutMs, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; sets are ${JSON.stringify(last)}, want ${JSON.stringify(want)}`);
  });
}

/** The VPN address a client was pushed (`ifconfig ADDR MASK` in its PUSH_REPLY). */
export function pushedAddress(pushReply: string | undefined): string {
  const m = /,ifconfig (\d+\.\d+\.\d+\.\d+) /.exec(pushReply ?? '');
  if (!m) throw new Error(`no ifconfig in ${pushReply}`);
  return m[1]!;
}

/**
 * The firewall plugin's entry: each group's sets hold the clients in the client groups mapped to
 * it (`{ staff: ['vpn-admins'] }`); a client in none of them is a guest.
 */
export function firewallByGroups(groups: Readonly<Record<string, readonly string[]>>): string[] {
  return [
    '  - use: firewall',
    '    options:',
    '      groups:',
    ...Object.entries(groups).map(([group, from]) => `        ${group}: { groups: [${from.join(', ')}] }`),
    '        guests: {}',
    '      default-group: guests',
  ];
}

/** What the client group vpn-admins gives, after the plugin that put the client in it: a pushed route (client-config) and the firewall's staff set. */
export const ADMIN_PLUGINS = [
  '  - use: client-config',
  '    options:',
  '      groups:',
  '        admins:',
  '          members: { groups: [vpn-admins] }',
  '          push: ["route 10.231.0.0 255.255.0.0"]',
  ...firewallByGroups({ staff: ['vpn-admins'] }),
];

/** The route ADMIN_PLUGINS push to vpn-admins, as it stands in a client's PUSH_REPLY. */
export const ADMIN_ROUTE = /route 10\.231\.0\.0 255\.255\.0\.0/;

/**
 * A lab whose clients sign in with a password from `usersFile` (password-auth) and join the
 * firewall groups mapped from the users file's groups (`{ staff: ['vpn-staff'] }`); a client in
 * none of them is a guest. `after`: plugin entries that run after the firewall.
 */
export function passwordFirewallOptions(
  usersFile: string,
  groups: Readonly<Record<string, readonly string[]>>,
  after: readonly string[] = [],
): NetnsLabOptions {
  return {
    events: ['user-pass-verify', 'client-connect', 'client-disconnect', 'learn-address'],
    passwords: true,
    pluginTimeout: '10s',
    plugins: ['  - use: password-auth', `    options: { file: ${usersFile} }`, ...firewallByGroups(groups), ...after],
  };
}

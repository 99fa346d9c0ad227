/**
 * @module bench-env
 * Where the benchmark runs: a throwaway network namespace (OpenVPN, clients and daemon inside,
 * so the firewall's nft table and routes never touch the host), a root config for the root
 * stage in a root-owned folder, and a sudoers drop-in that lets `nobody` start exactly that
 * root stage. All of it is removed at the end: by `close()`, at this process's exit, and by
 * `closeBenchEnvs()`, which the command line calls on SIGTERM, SIGHUP and SIGINT. The names
 * carry the benchmark's pid, so a later run removes what a killed one (SIGKILL, power loss) left.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkSudoers, rootCommand, sudoersDropIn } from '../root/sudoers.ts';

/** How many addresses the staff group's IPv4 set holds (0 when nft cannot say). */
export function staffSetSize(env: Pick<BenchEnv, 'netns'>): number {
  const r = spawnSync('ip', ['netns', 'exec', env.netns, 'nft', '-j', 'list', 'set', 'inet', 'flexscript_bench', 'g_staff_v4'], {
    encoding: 'utf8',
    // a large fleet's set lists every address
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) return 0;
  const doc = JSON.parse(r.stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
  return doc.nftables.find((i) => i.set)?.set?.elem?.length ?? 0;
}

/** OpenVPN's client pool in every run: a /16, as a /24 holds only 253 clients. */
export const BENCH_POOL = { network: `10.${150 + (process.pid % 50)}.0.0`, netmask: '255.255.0.0', prefix: 16 };

export interface BenchEnv {
  readonly netns: string;
  /** OpenVPN's tun device in every run (one run at a time). */
  readonly dev: string;
  /** Root config for the root stage; undefined when the firewall cannot run here. */
  readonly rootConfig?: string;
  /** Why the firewall is left out, if it is. */
  readonly noFirewall?: string;
  readonly dir: string;
  close(): void;
}

const run = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });

const SUDOERS_DIR = '/etc/sudoers.d';
const TMP = '/tmp';
/** flexscript-bench-PID-ID; older versions wrote flexscript-bench-ID. */
const SUDOERS_NAME = /^flexscript-bench-(?:(\d+)-)?[0-9a-f]{6}$/;
const NETNS_NAME = /^fxs-bench-(\d+)-[0-9a-f]{6}$/;
const DIR_NAME = /^flexscript-bench-(\d+)-[A-Za-z0-9]{6}$/;

const open = new Set<() => void>();

/** Removes what every benchmark environment of this process made (synchronous: safe in a signal handler). */
export function closeBenchEnvs(): void {
  for (const close of [...open]) close();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills every process inside a network namespace: OpenVPN, clients, the daemon and its root stage. */
function killInside(netns: string): void {
  const pids =
    run(['ip', 'netns', 'pids', netns])
      .stdout?.split('\n')
      .filter((l) => /^\d+$/.test(l)) ?? [];
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function namespaces(): string[] {
  return (run(['ip', 'netns', 'list']).stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** The root config a bench drop-in grants, if the file is one. */
function grantedConfig(path: string): string | undefined {
  try {
    return /--config (\/tmp\/flexscript-bench-[A-Za-z0-9-]+\/root\.yaml)$/m.exec(readFileSync(path, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** A root-owned folder no one else can write to: what a live benchmark's root config sits in. */
function trustedDir(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * Removes what earlier benchmarks left when they were killed: their sudoers drop-ins (a root
 * grant for `nobody`), network namespaces (with the processes still inside) and folders. Only
 * what a dead process made goes; a drop-in from an older version, which carries no pid, goes
 * when the root config it grants is gone or sits in a folder others could write to.
 */
function removeStaleBenchEnvs(): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(SUDOERS_DIR);
  } catch {
    // no sudoers.d: nothing was granted
  }
  for (const name of entries) {
    const m = SUDOERS_NAME.exec(name);
    if (!m) continue;
    const path = join(SUDOERS_DIR, name);
    const config = grantedConfig(path);
    const stale = m[1] !== undefined ? !alive(Number(m[1])) : config !== undefined && !trustedDir(dirname(config));
    if (stale) rmSync(path, { force: true });
  }
  for (const netns of namespaces()) {
    const m = NETNS_NAME.exec(netns);
    if (!m || alive(Number(m[1]))) continue;
    killInside(netns);
    run(['ip', 'netns', 'del', netns]);
  }
  for (const name of readdirSync(TMP)) {
    const m = DIR_NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const path = join(TMP, name);
    // only a real root-owned folder: never a link another user planted in /tmp
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === 0) rmSync(path, { recursive: true, force: true });
  }
}

/** `vpnNetworks`: the client networks the root stage may put into sets (default: BENCH_POOL). */
export async function createBenchEnv(o: { readonly vpnNetworks?: readonly string[] } = {}): Promise<BenchEnv> {
  removeStaleBenchEnvs();
  const id = randomBytes(3).toString('hex');
  const netns = `fxs-bench-${process.pid}-${id}`;
  const dev = `fxbench${id}`;
  // /tmp is root-owned and sticky: a root-owned folder in it is one the root stage trusts
  const dir = mkdtempSync(join(TMP, `flexscript-bench-${process.pid}-`));
  chmodSync(dir, 0o755);
  // no dot in the name: sudo skips drop-ins whose name has one
  const sudoers = join(SUDOERS_DIR, `flexscript-bench-${process.pid}-${id}`);
  let granted = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    open.delete(close);
    process.removeListener('exit', close);
    // the grant first: nothing may start the root stage any more
    if (granted) rmSync(sudoers, { force: true });
    killInside(netns);
    run(['ip', 'netns', 'del', netns]);
    rmSync(dir, { recursive: true, force: true });
  };
  open.add(close);
  process.once('exit', close);
  const fail = (what: string, r: { status: number | null; stderr: string }) => {
    close();
    throw new Error(`${what} failed: ${r.stderr.trim()}`);
  };
  let r = run(['ip', 'netns', 'add', netns]);
  if (r.status !== 0) fail('ip netns add', r);
  r = run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  if (r.status !== 0) fail('bringing up loopback', r);
  const rootConfig = join(dir, 'root.yaml');
  writeFileSync(
    rootConfig,
    `# the benchmark's root config: staff may reach one network\ntable: flexscript_bench\nvpn-interfaces: [${dev}]\nvpn-networks: [${(o.vpnNetworks ?? [`${BENCH_POOL.network}/${BENCH_POOL.prefix}`]).join(', ')}]\ngroups:\n  staff:\n    allow:\n      - { to: 10.20.0.0/16, protocol: tcp, ports: [22, 443] }\nroutes:\n  proto: 251\n  allowed: [10.201.0.0/16]\n`,
    { mode: 0o644 },
  );
  try {
    const draft = join(dir, 'sudoers');
    writeFileSync(draft, sudoersDropIn({ user: 'nobody', command: rootCommand(rootConfig) }), { mode: 0o440 });
    await checkSudoers(draft);
    writeFileSync(sudoers, sudoersDropIn({ user: 'nobody', command: rootCommand(rootConfig) }), { mode: 0o440, flag: 'wx' });
    granted = true;
  } catch (err) {
    return { netns, dev, dir, noFirewall: `no root stage: ${err instanceof Error ? err.message : String(err)}`, close };
  }
  return { netns, dev, dir, rootConfig, close };
}

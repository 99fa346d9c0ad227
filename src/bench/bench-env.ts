/**
 * @module bench-env
 * Where the benchmark runs: a throwaway network namespace (OpenVPN, clients and daemon inside,
 * so the firewall's nft table and routes never touch the host), a root config for the root
 * stage in a root-owned folder, and a sudoers drop-in that lets `nobody` start exactly that
 * root stage. All of it is removed at the end, also when the run is interrupted.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkSudoers, rootCommand, sudoersDropIn } from '../root/sudoers.ts';

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

export async function createBenchEnv(): Promise<BenchEnv> {
  const id = randomBytes(3).toString('hex');
  const netns = `fxs-bench-${id}`;
  const dev = `fxbench${id}`;
  // /tmp is root-owned and sticky: a root-owned folder in it is one the root stage trusts
  const dir = mkdtempSync('/tmp/flexscript-bench-');
  chmodSync(dir, 0o755);
  let sudoers: string | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (sudoers) rmSync(sudoers, { force: true });
    run(['ip', 'netns', 'del', netns]);
    rmSync(dir, { recursive: true, force: true });
  };
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
    `# the benchmark's root config: staff may reach one network\ntable: flexscript_bench\nvpn-interfaces: [${dev}]\ngroups:\n  staff:\n    allow:\n      - { to: 10.20.0.0/16, protocol: tcp, ports: [22, 443] }\nroutes:\n  proto: 251\n  allowed: [10.201.0.0/16]\n`,
    { mode: 0o644 },
  );
  try {
    const draft = join(dir, 'sudoers');
    writeFileSync(draft, sudoersDropIn({ user: 'nobody', command: rootCommand(rootConfig) }), { mode: 0o440 });
    await checkSudoers(draft);
    // no dot in the name: sudo skips drop-ins whose name has one
    sudoers = `/etc/sudoers.d/flexscript-bench-${id}`;
    writeFileSync(sudoers, sudoersDropIn({ user: 'nobody', command: rootCommand(rootConfig) }), { mode: 0o440, flag: 'wx' });
  } catch (err) {
    return { netns, dev, dir, noFirewall: `no root stage: ${err instanceof Error ? err.message : String(err)}`, close };
  }
  return { netns, dev, dir, rootConfig, close };
}

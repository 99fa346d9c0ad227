/**
 * @module bench
 * The reconnect-storm benchmark: N real clients start first, then a real OpenVPN server, so
 * all of them connect at once; it measures the time until every client reports connected, for
 * five ways of running hooks in the same run so the ratios hold on a noisy machine. Repeated
 * (`repeat`), it runs rounds in which each mode follows a floor run of its own (bench-rounds).
 * `ldap-totp` adds a directory login and a one-time code per client (bench-logins).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.ts';
import { HOOK, ownedDir, startDaemon, writeConfig, type DaemonHandle } from '../lab/daemon-process.ts';
import { examplePluginsYaml } from '../lab/example-plugins.ts';
import { createLab, type Lab } from '../lab/lab.ts';
import type { OpenVpnClient } from '../lab/openvpn-process.ts';
import { waitFor } from '../lab/wait.ts';
import { hookModeLines } from '../sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../sources/management/openvpn-lines.ts';
import { BENCH_POOL, closeBenchEnvs, createBenchEnv, staffSetSize, type BenchEnv } from './bench-env.ts';
import { cpuSeconds } from './process-stats.ts';
import { benchLogins, type BenchLogins } from './bench-logins.ts';
import { columns, floorRatio, formatRounds, roundPlan, summarizeRounds, type BenchModeSummary, type BenchRound, type BenchStat } from './bench-rounds.ts';

import { DEFAULT_BENCH_MODES, type BenchMode } from './bench-modes.ts';
export { DEFAULT_BENCH_MODES };

export interface BenchOptions {
  readonly clients: number;
  readonly json?: string;
  /** Default: DEFAULT_BENCH_MODES. */
  readonly modes?: readonly BenchMode[];
  /** Where progress lines go (the CLI passes the terminal). */
  readonly out: (line: string) => void;
  /** Give up on a mode after this many seconds. */
  readonly timeoutS?: number;
  /** Rounds to run (default 1: each mode once, against the one floor run). */
  readonly repeat?: number;
}

export interface BenchRun {
  /** Repeated runs only: the round (from 1) and the index in `runs` of the floor run this one is measured against. */
  readonly round?: number;
  readonly floorIndex?: number;
  readonly mode: BenchMode;
  readonly seconds: number;
  readonly ratio: number;
  readonly connected: number;
  /** CPU seconds OpenVPN's server process used during the storm. */
  readonly openvpnCpuSeconds: number;
  readonly daemonCpuSeconds?: number;
  readonly daemonPeakRssMB?: number;
  /** Time inside the daemon per client-connect, queue wait included. */
  readonly latencyMs?: { readonly p50: number; readonly p99: number; readonly events: number };
  /** ldap-totp: the same per user-pass-verify (directory login and code). */
  readonly loginLatencyMs?: { readonly p50: number; readonly p99: number; readonly events: number };
  /**
   * Proof the pipeline ran: open accounting records and firewall set elements at the end, and
   * (ldap-totp) the logins the daemon accepted.
   */
  readonly checks?: { readonly accountingRecords: number; readonly firewallElements?: number; readonly logins?: number };
  readonly error?: string;
}

export interface BenchResult {
  readonly clients: number;
  readonly pipeline: string;
  /** Every run, in the order they ran. */
  readonly runs: BenchRun[];
  /** Repeated runs only: the rounds, and per mode the median, best and worst over them. */
  readonly repeat?: number;
  readonly rounds?: BenchRound[];
  readonly summary?: BenchModeSummary[];
  readonly hookToShNoop?: BenchStat;
}

const LOGINS =
  '; ldap-totp: management mode with fast-push: auto, the same plugins plus ldap-auth (slapd in the namespace, a user per client; service-account search, then bind as the user, StartTLS with a pinned CA, nested groups by search, a required group, pool of 4) and totp (static challenge, one secret per user) answering user-pass-verify';
/** The pipeline the flexscript modes run: what a realistic deployment has. */
export const BENCH_PIPELINE = `office-routes (per-group route and DNS push) + session-log (a JSON line per session) + firewall (each address into its group set through the root stage, sudo, nft) + accounting (SQLite, durable before each answer); hook mode with learn-address: connect, management mode with fast-push: auto${LOGINS}`;
const BENCH_PIPELINE_NO_FIREWALL = `office-routes (per-group route and DNS push) + session-log (a JSON line per session) + accounting (SQLite, durable before each answer); firewall left out; hook mode with learn-address: connect, management mode with fast-push: auto${LOGINS}`;

function openRecords(db: string): number {
  try {
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return (conn.prepare('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL').get() as { n: number }).n;
    } finally {
      conn.close();
    }
  } catch {
    return 0;
  }
}

function peakRssMB(pid: number): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type DaemonMode = 'hook' | 'management' | 'management-fast-push' | 'ldap-totp';

function daemonConfig(mode: DaemonMode, work: string, db: string, socket: string, env: BenchEnv, logins?: BenchLogins): string {
  const source =
    mode === 'hook'
      ? // addresses reported at the accepted connect: one hook process fewer per client
        `hook:\n  dir: ${join(work, 'run')}\n  group: nogroup\n  timeout: 30s\n  learn-address: connect`
      : `management:\n  instances:\n    - name: bench\n      socket: ${socket}${mode === 'management-fast-push' ? '\n  fast-push: true' : ''}`;
  const firewall = env.rootConfig ? `  - use: firewall\n    options:\n      groups:\n        staff: { patterns: ["storm-*"] }\n` : '';
  return `instance: bench
${source}
${env.rootConfig ? `root:\n  config: ${env.rootConfig}\n  timeout: 30s\n` : ''}store:
  sqlite: ${db}
pipeline:
  timeout: 10s
  concurrency: 512
${examplePluginsYaml({ sessionLog: join(work, 'sessions.jsonl'), admins: ['storm-1*'] })}${logins?.pluginsYaml ?? ''}${firewall}  - use: accounting
`;
}

/**
 * Where the runtime files go: tmpfs, as /run is on a production server (OpenVPN's temp files,
 * the hook spool). The accounting database stays on disk, so its commits cost real fsyncs.
 */
function runtimeBase(): string | undefined {
  return ['/dev/shm', '/run'].find((d) => {
    // one line per mount stacked there; the last is the one in use
    const types = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', d], { encoding: 'utf8' }).stdout?.trim().split('\n') ?? [];
    return types.at(-1) === 'tmpfs';
  });
}

const dbDirs = new WeakMap<Lab, string>();
/** Accounting folders not yet removed, for stopBench. */
const liveDbDirs = new Set<string>();
function accountingDb(lab: Lab): string {
  let dir = dbDirs.get(lab);
  if (!dir) {
    const made = ownedDir(mkdtempSync(join(tmpdir(), 'flexscript-bench-db-')));
    liveDbDirs.add(made);
    lab.track(() => {
      rmSync(made, { recursive: true, force: true });
      liveDbDirs.delete(made);
    });
    dbDirs.set(lab, (dir = made));
  }
  return join(dir, 'accounting.db');
}

/**
 * Stops a running benchmark at once and removes what it made: the sudoers drop-in first, then
 * every process in its network namespace (OpenVPN, clients, the daemon and its root stage), the
 * namespace and its files. Synchronous, for the command line's signal handlers; the labs' own
 * exit hook kills their processes and removes their folders when the process then exits.
 */
export function stopBench(): void {
  closeBenchEnvs();
  for (const dir of liveDbDirs) rmSync(dir, { recursive: true, force: true });
  liveDbDirs.clear();
}

/** Server lines, the daemon if the mode has one, and the clients' credentials if it checks them. */
async function prepare(mode: BenchMode, lab: Lab, env: BenchEnv, clients: number): Promise<{ lines: string[]; daemon?: DaemonHandle; logins?: BenchLogins }> {
  const hooks = (cmd: string) => ['script-security 2', `client-connect ${cmd}`, `client-disconnect ${cmd}`, `learn-address ${cmd}`];
  switch (mode) {
    case 'floor':
      return { lines: [] };
    case 'sh-noop': {
      const path = join(lab.dir, 'noop.sh');
      writeFileSync(path, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      return { lines: hooks(path) };
    }
    case 'node-per-event': {
      const path = join(lab.dir, 'noop.mjs');
      writeFileSync(path, `#!${process.execPath}\nprocess.exit(0);\n`, { mode: 0o755 });
      return { lines: hooks(path) };
    }
    case 'hook':
    case 'management':
    case 'management-fast-push':
    case 'ldap-totp': {
      const logins = mode === 'ldap-totp' ? await benchLogins(lab, clients, env.netns) : undefined;
      const work = ownedDir(join(lab.dir, 'work'));
      const socket = join(lab.dir, 'mgmt.sock');
      const yaml = daemonConfig(mode, work, accountingDb(lab), socket, env, logins);
      const configPath = writeConfig(lab.dir, yaml);
      const daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { netns: env.netns, watch: false });
      lab.track(() => daemon.stop());
      const config = parseConfig(yaml, configPath).config;
      const lines =
        mode === 'hook'
          ? hookModeLines(config.hook!, ['client-connect', 'client-disconnect', 'learn-address'], HOOK)
          : // hold: no client is served before the daemon has attached
            [...managementModeLines(config.management!.instances[0]!, { checksPasswords: logins !== undefined, daemonUser: 'nobody' }), 'management-hold'];
      return { lines, daemon, ...(logins ? { logins } : {}) };
    }
  }
}

/** `label` names the run in progress lines: the mode, and its round when repeated. */
async function runMode(mode: BenchMode, o: BenchOptions, out: (l: string) => void, env: BenchEnv, label: string = mode): Promise<Omit<BenchRun, 'ratio'>> {
  const lab = await createLab(`bench-${mode}`, { netns: env.netns, base: runtimeBase() });
  try {
    const { lines, daemon, logins } = await prepare(mode, lab, env, o.clients);
    const port = await lab.allocPort();
    out(`${label}: starting ${o.clients} clients`);
    const clients: OpenVpnClient[] = [];
    for (let i = 0; i < o.clients; i++) clients.push(await lab.startClient({ commonName: `storm-${i}`, port, ...logins?.credentials(i) }));
    const daemonCpu0 = daemon ? cpuSeconds(daemon.pid) : 0;
    const t0 = Date.now();
    const server = await lab.startServer({
      port,
      subnet: BENCH_POOL.network,
      netmask: BENCH_POOL.netmask,
      dev: env.dev,
      extraConfig: [...lines, 'hand-window 120'],
    });
    const pending = new Set(clients);
    let last = t0;
    let progress = t0;
    await waitFor(
      `${label}: all clients connected`,
      () => {
        if (!server.running) throw new Error(`${label}: OpenVPN exited; see ${server.logPath}`);
        for (const c of pending) {
          if (c.log().includes('Initialization Sequence Completed')) {
            pending.delete(c);
            // the log's mtime is when the line was written: finer than this poll
            last = Math.max(last, statSync(c.logPath).mtimeMs);
          }
        }
        if (Date.now() - progress > 2000) {
          progress = Date.now();
          out(`${label}: ${o.clients - pending.size}/${o.clients} connected after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        }
        return pending.size === 0;
      },
      { timeoutMs: (o.timeoutS ?? 600) * 1000, intervalMs: 250 },
    ).catch((err: Error) => {
      if (!server.running) throw err;
    });
    const seconds = (last - t0) / 1000;
    const unaddressed = clients.filter((c) => !/,ifconfig \d/.test(c.pushReply() ?? '')).length - pending.size;
    const run: Omit<BenchRun, 'ratio'> = {
      mode,
      seconds: Math.round(seconds * 100) / 100,
      connected: o.clients - pending.size,
      openvpnCpuSeconds: cpuSeconds(server.pid),
      ...(pending.size > 0 ? { error: `${pending.size} clients not connected within ${o.timeoutS ?? 600} s` } : {}),
      ...(unaddressed > 0 ? { error: `${unaddressed} clients connected without a VPN address` } : {}),
    };
    if (!daemon) return run;
    // the pipeline really ran: every client has its accounting record and its firewall element
    const db = accountingDb(lab);
    const recorded = await waitFor('accounting records', () => (openRecords(db) >= run.connected ? true : undefined), { timeoutMs: 30_000 }).then(
      () => openRecords(db),
      () => openRecords(db),
    );
    const inSet = env.rootConfig
      ? await waitFor('firewall elements', () => (staffSetSize(env) >= run.connected ? true : undefined), { timeoutMs: 30_000 }).then(
          () => staffSetSize(env),
          () => staffSetSize(env),
        )
      : undefined;
    const logs = daemon.logs();
    const timesOf = (event: string, verdict?: string) =>
      logs
        .filter((l) => l.msg === event && typeof l.ms === 'number' && (verdict === undefined || l.verdict === verdict))
        .map((l) => l.ms as number)
        .sort((a, b) => a - b);
    const latency = (ms: number[]) => ({ p50: percentile(ms, 50), p99: percentile(ms, 99), events: ms.length });
    const loginMs = logins ? timesOf('user-pass-verify', 'accept') : undefined;
    const checks = {
      accountingRecords: recorded,
      ...(inSet === undefined ? {} : { firewallElements: inSet }),
      ...(loginMs ? { logins: loginMs.length } : {}),
    };
    const short =
      recorded < run.connected
        ? `${recorded} accounting records for ${run.connected} clients`
        : inSet !== undefined && inSet < run.connected
          ? `${inSet} firewall elements for ${run.connected} clients`
          : loginMs && loginMs.length < run.connected
            ? `${loginMs.length} accepted logins for ${run.connected} clients`
            : undefined;
    if (loginMs) out(`${label}: logins (ldap-auth + totp) p50 ${percentile(loginMs, 50)} ms, p99 ${percentile(loginMs, 99)} ms, ${loginMs.length} accepted`);
    return {
      ...run,
      ...(short && !run.error ? { error: short } : {}),
      checks,
      daemonCpuSeconds: Math.round((cpuSeconds(daemon.pid) - daemonCpu0) * 100) / 100,
      daemonPeakRssMB: peakRssMB(daemon.pid),
      latencyMs: latency(timesOf('client-connect')),
      ...(loginMs ? { loginLatencyMs: latency(loginMs) } : {}),
    };
  } finally {
    await lab.close();
  }
}

/** The results as text: one row per run, or for repeated runs the summary over the rounds and each round. */
export function formatTable(result: BenchResult): string {
  if (result.summary && result.rounds)
    return formatRounds(result.clients, result.runs, {
      rounds: result.rounds,
      summary: result.summary,
      ...(result.hookToShNoop ? { hookToShNoop: result.hookToShNoop } : {}),
    });
  const head = ['mode', 'seconds', 'ratio', 'connected', 'openvpn cpu s', 'daemon cpu s', 'daemon rss MB', 'p50 ms', 'p99 ms'];
  const rows = result.runs.map((r) => [
    r.mode,
    r.seconds.toFixed(2),
    `${r.ratio.toFixed(2)}x`,
    `${r.connected}/${result.clients}`,
    r.openvpnCpuSeconds.toFixed(2),
    r.daemonCpuSeconds?.toFixed(2) ?? '-',
    String(r.daemonPeakRssMB ?? '-'),
    r.latencyMs ? r.latencyMs.p50.toFixed(1) : '-',
    r.latencyMs ? r.latencyMs.p99.toFixed(1) : '-',
  ]);
  return columns(head, rows);
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const { out } = o;
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`repeat must be a whole number of rounds, at least 1 (got ${repeat})`);
  const modes = o.modes ?? DEFAULT_BENCH_MODES;
  const runs: Omit<BenchRun, 'ratio'>[] = [];
  const env = await createBenchEnv();
  if (env.noFirewall) out(`firewall left out: ${env.noFirewall}`);
  try {
    if (repeat === 1) {
      for (const mode of modes) runs.push(await runMode(mode, o, out, env));
    } else {
      // one environment for every round: stopBench removes it, whichever round is running
      for (const p of roundPlan(modes, repeat)) {
        const label = `round ${p.round}/${repeat} ${p.mode}`;
        // a run that breaks (OpenVPN exits) is recorded as failed; the rounds go on
        const run = await runMode(p.mode, o, out, env, label).catch((err: unknown): Omit<BenchRun, 'ratio'> => {
          const error = err instanceof Error ? err.message : String(err);
          out(`${label}: failed: ${error}`);
          return { mode: p.mode, seconds: 0, connected: 0, openvpnCpuSeconds: 0, error };
        });
        runs.push({ round: p.round, ...(p.floorIndex === undefined ? {} : { floorIndex: p.floorIndex }), ...run });
      }
    }
  } finally {
    env.close();
  }
  const pipeline = env.noFirewall ? BENCH_PIPELINE_NO_FIREWALL : BENCH_PIPELINE;
  let result: BenchResult;
  if (repeat === 1) {
    const floor = runs.find((r) => r.mode === 'floor')?.seconds;
    result = { clients: o.clients, pipeline, runs: runs.map((r) => ({ ...r, ratio: floor ? Math.round((r.seconds / floor) * 100) / 100 : 0 })) };
  } else {
    const withRatios = runs.map((r, i) => ({ ...r, ratio: floorRatio(runs, i) }));
    result = { clients: o.clients, pipeline, repeat, ...summarizeRounds(withRatios), runs: withRatios };
  }
  if (o.json) writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

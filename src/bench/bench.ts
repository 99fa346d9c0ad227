/**
 * @module bench
 * The reconnect-storm benchmark: N real clients start first, then a real OpenVPN server, so
 * all of them connect at once; it measures the time until every client reports connected, for
 * five ways of running hooks in the same run so the ratios hold on a noisy machine.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.ts';
import { HOOK, ownedDir, startDaemon, writeConfig, type DaemonHandle } from '../lab/daemon-process.ts';
import { examplePluginsYaml } from '../lab/example-plugins.ts';
import { createLab, type Lab } from '../lab/lab.ts';
import type { OpenVpnClient } from '../lab/openvpn-process.ts';
import { waitFor } from '../lab/wait.ts';
import { hookModeLines } from '../sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../sources/management/openvpn-lines.ts';

export const BENCH_MODES = ['floor', 'sh-noop', 'node-per-event', 'hook', 'management', 'management-fast-push'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

export interface BenchOptions {
  readonly clients: number;
  readonly json?: string;
  readonly modes?: readonly BenchMode[];
  readonly out?: (line: string) => void;
  /** Give up on a mode after this many seconds. */
  readonly timeoutS?: number;
}

export interface BenchRun {
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
  readonly error?: string;
}

export interface BenchResult {
  readonly clients: number;
  readonly pipeline: string;
  readonly runs: BenchRun[];
}

/** The pipeline the two flexscript modes run: what exists of a realistic deployment. */
export const BENCH_PIPELINE = 'office-routes (per-group route and DNS push) + session-log (one accounting record per session)';

const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat; here counted after the command name
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
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

function daemonConfig(mode: 'hook' | 'management' | 'management-fast-push', work: string, socket: string): string {
  const source =
    mode === 'hook'
      ? `hook:\n  dir: ${join(work, 'run')}\n  group: nogroup\n  timeout: 30s`
      : `management:\n  instances:\n    - name: bench\n      socket: ${socket}${mode === 'management-fast-push' ? '\n  fast-push: true' : ''}`;
  return `instance: bench
${source}
pipeline:
  timeout: 10s
  concurrency: 512
${examplePluginsYaml({ sessionLog: join(work, 'sessions.jsonl'), admins: ['storm-1*'] })}`;
}

/** Server lines, and the daemon if the mode has one. */
async function prepare(mode: BenchMode, lab: Lab): Promise<{ lines: string[]; daemon?: DaemonHandle }> {
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
    case 'management-fast-push': {
      const work = ownedDir(join(lab.dir, 'work'));
      const socket = join(lab.dir, 'mgmt.sock');
      const yaml = daemonConfig(mode, work, socket);
      const configPath = writeConfig(lab.dir, yaml);
      const daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'));
      lab.track(() => daemon.stop());
      const config = parseConfig(yaml, configPath).config;
      const lines =
        mode === 'hook'
          ? hookModeLines(config.hook!, ['client-connect', 'client-disconnect', 'learn-address'], HOOK)
          : // hold: no client is served before the daemon has attached
            [...managementModeLines(config.management!.instances[0]!, { checksPasswords: false, daemonUser: 'nobody' }), 'management-hold'];
      return { lines, daemon };
    }
  }
}

async function runMode(mode: BenchMode, o: BenchOptions, out: (l: string) => void): Promise<Omit<BenchRun, 'ratio'>> {
  const lab = await createLab(`bench-${mode}`);
  try {
    const { lines, daemon } = await prepare(mode, lab);
    const port = await lab.allocPort();
    out(`${mode}: starting ${o.clients} clients`);
    const clients: OpenVpnClient[] = [];
    for (let i = 0; i < o.clients; i++) clients.push(await lab.startClient({ commonName: `storm-${i}`, port }));
    const daemonCpu0 = daemon ? cpuSeconds(daemon.pid) : 0;
    const t0 = Date.now();
    // a /16 pool: a /24 holds 253 clients, and the rest would connect without an address
    const subnet = `10.${150 + (process.pid % 50)}.0.0`;
    const server = await lab.startServer({ port, subnet, netmask: '255.255.0.0', extraConfig: [...lines, 'hand-window 120'] });
    const pending = new Set(clients);
    let last = t0;
    let progress = t0;
    await waitFor(
      `${mode}: all clients connected`,
      () => {
        if (!server.running) throw new Error(`${mode}: OpenVPN exited; see ${server.logPath}`);
        for (const c of pending) {
          if (c.log().includes('Initialization Sequence Completed')) {
            pending.delete(c);
            // the log's mtime is when the line was written: finer than this poll
            last = Math.max(last, statSync(c.logPath).mtimeMs);
          }
        }
        if (Date.now() - progress > 2000) {
          progress = Date.now();
          out(`${mode}: ${o.clients - pending.size}/${o.clients} connected after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
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
    const ms = daemon
      .logs()
      .filter((l) => l.msg === 'client-connect' && typeof l.ms === 'number')
      .map((l) => l.ms as number)
      .sort((a, b) => a - b);
    return {
      ...run,
      daemonCpuSeconds: Math.round((cpuSeconds(daemon.pid) - daemonCpu0) * 100) / 100,
      daemonPeakRssMB: peakRssMB(daemon.pid),
      latencyMs: { p50: percentile(ms, 50), p99: percentile(ms, 99), events: ms.length },
    };
  } finally {
    await lab.close();
  }
}

export function formatTable(result: BenchResult): string {
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

export async function runBench(o: BenchOptions): Promise<BenchResult> {
  const out = o.out ?? ((l: string) => process.stderr.write(`${l}\n`));
  const runs: Omit<BenchRun, 'ratio'>[] = [];
  for (const mode of o.modes ?? BENCH_MODES) runs.push(await runMode(mode, o, out));
  const floor = runs.find((r) => r.mode === 'floor')?.seconds;
  const result: BenchResult = {
    clients: o.clients,
    pipeline: BENCH_PIPELINE,
    runs: runs.map((r) => ({ ...r, ratio: floor ? Math.round((r.seconds / floor) * 100) / 100 : 0 })),
  };
  if (o.json) writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

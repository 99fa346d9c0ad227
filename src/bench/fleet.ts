/**
 * @module fleet
 * The fleet benchmark: the real daemon (`flexscript run`, the realistic pipeline) against many
 * simulated OpenVPN servers (fleet-instance.ts) in this process, to drive it past what real
 * OpenVPN processes on one machine can make. Phases: a ramp to N live sessions (pausing at
 * 1,000, 10,000 and 100,000 to read the daemon's memory once it is idle), a round of
 * renegotiations (REAUTH), a reconnect storm (a share of the clients leave and come back at
 * once), then every client leaves. Memory is read twice at each pause: as soon as the daemon has
 * settled, and once it is idle (after the trim that gives a storm's heap back, heap-trim.ts), the
 * second also before the first connect. Reported per phase: connects per second, decision time
 * (CONNECT written to the answer read) p50/p99, and the store's round trips per connect (the
 * daemon's `flexscript_store_round_trips_total`); and at the end, that nothing was lost: every
 * accepted connect has its record in the store, opened and closed with its bytes.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownedDir, RUN_AS, startDaemon, writeConfig, type DaemonHandle } from '../lab/daemon-process.ts';
import { examplePluginsYaml } from '../lab/example-plugins.ts';
import { waitFor } from '../lab/wait.ts';
import { HEAP_TRIM_INTERVAL_MS } from '../daemon/heap-trim.ts';
import { createBenchEnv, staffSetSize, type BenchEnv } from './bench-env.ts';
import { cpuSeconds } from './process-stats.ts';
import { FleetInstance, type ConnectOutcome } from './fleet-instance.ts';
import { openFleetStore, type FleetStore, type RecordCounts } from './fleet-store.ts';

export interface FleetOptions {
  /** Simulated OpenVPN servers (default 20). */
  readonly instances?: number;
  /** Live sessions to ramp to (default 10,000). */
  readonly sessions?: number;
  readonly store?: 'sqlite' | 'postgres';
  /** Connects waiting for their answer at once, over all instances (default 256). */
  readonly inFlight?: number;
  /** Share of the live clients that leave and reconnect at once in the storm (default 0.5). */
  readonly storm?: number;
  /** Share of the live clients that renegotiate (REAUTH) (default 0.1). */
  readonly reauth?: number;
  /** The firewall plugin through the real root stage (sudo, nft, a network namespace). */
  readonly firewall?: boolean;
  /** PostgreSQL connections in the daemon's pool (default 16). */
  readonly pgPool?: number;
  readonly json?: string;
  readonly out: (line: string) => void;
  /** Give up on a phase after this many seconds (default 600). */
  readonly timeoutS?: number;
}

interface LatencyStat {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

interface FleetPhase {
  readonly name: 'ramp' | 'reauth' | 'storm' | 'leave';
  /** Connects (or renegotiations, or disconnects) in the phase. */
  readonly events: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** CONNECT (or REAUTH) to the daemon's answer, in ms. */
  readonly decisionMs?: LatencyStat;
  readonly denied: number;
  /** The store's round trips during the phase, and per event (a connect with its address; a reconnect with its disconnect). */
  readonly storeRoundTrips?: number;
  readonly storeRoundTripsPerEvent?: number;
  /** PostgreSQL: transactions committed during the phase, per event. */
  readonly transactionsPerEvent?: number;
}

interface FleetCheckpoint {
  readonly sessions: number;
  readonly rssMB: number;
  /** V8's heap in use (live objects and garbage not yet collected). */
  readonly heapUsedMB: number;
  /** (RSS now − RSS with no session) / sessions. */
  readonly bytesPerSession: number;
  /** RSS once the daemon has been idle long enough to give back what the ramp made V8 take. */
  readonly idleRssMB: number;
  /** (idle RSS now − idle RSS with no session) / sessions. */
  readonly idleBytesPerSession: number;
  /** Of the ramp's segment that ended here. */
  readonly connectsPerSecond: number;
}

export interface FleetResult {
  readonly instances: number;
  readonly sessions: number;
  readonly store: 'sqlite' | 'postgres';
  readonly inFlight: number;
  readonly pipeline: string;
  readonly phases: FleetPhase[];
  readonly checkpoints: FleetCheckpoint[];
  /** RSS with no session, once idle (before the first connect). */
  readonly baselineRssMB: number;
  readonly peakRssMB?: number;
  /** Extra bytes per live session from the first checkpoint to the last. */
  readonly marginalBytesPerSession?: number;
  /** The same, idle RSS to idle RSS. */
  readonly marginalIdleBytesPerSession?: number;
  readonly daemonCpuSeconds: number;
  /** Nothing lost: records in the store for the connects the daemon accepted, and how they ended. */
  readonly checks: RecordCounts & {
    readonly acceptedConnects: number;
    readonly firewallElements?: number;
  };
  readonly errors: string[];
}

const CHECKPOINTS = [1000, 10_000, 100_000];

const cleanups = new Set<() => void>();
/** Kills the daemon and removes what the running fleet benchmark made (synchronous, for signal handlers). */
export function stopFleet(): void {
  for (const c of [...cleanups].reverse()) c();
  cleanups.clear();
}

function percentiles(ms: number[]): LatencyStat | undefined {
  if (ms.length === 0) return undefined;
  const sorted = Float64Array.from(ms).sort();
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 100) / 100;
  return { p50: at(0.5), p99: at(0.99), max: at(1), count: sorted.length };
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/**
 * The daemon's RSS once it is idle: read every second until it has not fallen by more than
 * 1 MiB for four trim periods (its heap trim runs after two quiet periods), at most a minute.
 */
async function idleRss(pid: number): Promise<number> {
  const start = performance.now();
  let low = procStatus(pid, 'VmRSS') ?? 0;
  let rss = low;
  let since = start;
  while (performance.now() - since < 4 * HEAP_TRIM_INTERVAL_MS && performance.now() - start < 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rss = procStatus(pid, 'VmRSS') ?? 0;
    if (rss < low - 1024 * 1024) {
      low = rss;
      since = performance.now();
    }
  }
  return rss;
}

/** The daemon's metrics over its unix socket: the sum of one metric's samples. */
function scrape(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum += Number(line.split(' ').at(-1));
  return sum;
}

/** Runs `jobs` jobs, at most `width` at a time. */
async function pool(jobs: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs) }, worker));
}

function daemonYaml(o: { instances: FleetInstance[]; sockets: string[]; work: string; storeYaml: string; metricsSocket: string; env?: BenchEnv }): string {
  const firewall = o.env?.rootConfig ? `  - use: firewall\n    options:\n      groups:\n        staff: { patterns: ["fleet-*"] }\n` : '';
  return `instance: fleet
management:
  instances:
${o.instances.map((f, i) => `    - name: ${f.name}\n      socket: ${o.sockets[i]}`).join('\n')}
${o.env?.rootConfig ? `root:\n  config: ${o.env.rootConfig}\n  timeout: 30s\n` : ''}${o.storeYaml}
metrics:
  socket: ${o.metricsSocket}
pipeline:
  timeout: 10s
  concurrency: 512
${examplePluginsYaml({ sessionLog: join(o.work, 'sessions.jsonl'), admins: ['fleet-1*'] })}  - use: session-limit
    options: { max: 2 }
${firewall}  - use: accounting
`;
}

const PIPELINE =
  'office-routes (per-group route and DNS push) + session-log (a JSON line per session) + session-limit (max 2 per user, counted in the store) + accounting (durable before each answer); management mode, fast-push: auto';

export async function runFleet(o: FleetOptions): Promise<FleetResult> {
  const { out } = o;
  const k = o.instances ?? 20;
  const target = o.sessions ?? 10_000;
  const storeKind = o.store ?? 'sqlite';
  const inFlight = o.inFlight ?? 256;
  const timeoutMs = (o.timeoutS ?? 600) * 1000;
  if (!Number.isInteger(k) || k < 1 || k > 200) throw new Error(`instances must be a whole number from 1 to 200 (got ${k})`);
  if (!Number.isInteger(target) || target < 1 || target > 60_000 * k)
    throw new Error(`sessions must be a whole number from 1 to ${60_000 * k} (got ${target})`);
  const errors: string[] = [];
  const steps: (() => unknown)[] = [];
  const sync = (step: () => void) => {
    cleanups.add(step);
    steps.push(() => {
      cleanups.delete(step);
      step();
    });
  };
  const track = (step: () => unknown) => steps.push(step);
  try {
    // sockets, the daemon's runtime files and its log: a root-owned folder nobody may only enter
    const dir = mkdtempSync(join(['/dev/shm', tmpdir()].find((d) => spawnSync('test', ['-d', d]).status === 0)!, 'flexscript-fleet-'));
    chmodSync(dir, 0o755);
    // FXS_KEEP (as in the lab): the daemon's log and config stay for a look afterwards
    if (process.env.FXS_KEEP) out(`fleet: keeping ${dir}`);
    else sync(() => rmSync(dir, { recursive: true, force: true }));
    const work = ownedDir(join(dir, 'work'));
    const env = o.firewall ? await createBenchEnv({ vpnNetworks: Array.from({ length: k }, (_, i) => `10.${100 + i}.0.0/16`) }) : undefined;
    if (env) sync(() => env.close());
    if (env?.noFirewall) throw new Error(`the firewall cannot run here: ${env.noFirewall}`);
    const store: FleetStore = await openFleetStore(storeKind, { pool: o.pgPool ?? 16, track, sync });
    const instances = Array.from(
      { length: k },
      (_, i) => new FleetInstance({ name: `vpn${i + 1}`, socket: join(dir, `vpn${i + 1}.sock`), pid: 40_000 + i, pool: `10.${100 + i}`, owner: RUN_AS }),
    );
    for (const f of instances) await f.listen();
    track(() => Promise.all(instances.map((f) => f.close())));
    const metricsSocket = join(work, 'metrics.sock');
    const yaml = daemonYaml({ instances, sockets: instances.map((_, i) => join(dir, `vpn${i + 1}.sock`)), work, storeYaml: store.yaml, metricsSocket, env });
    const configPath = writeConfig(dir, yaml);
    out(`fleet: ${k} simulated OpenVPN servers, ${target} sessions, store ${storeKind}${env ? ', firewall through the root stage' : ''}`);
    const daemon: DaemonHandle = await startDaemon(configPath, join(dir, 'daemon.log'), { watch: false, ...(env ? { netns: env.netns } : {}) });
    sync(() => {
      try {
        process.kill(daemon.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    });
    track(() => daemon.stop());
    await waitFor('the daemon to attach to every simulated server', () => Promise.all(instances.map((f) => f.released)).then(() => true), {
      timeoutMs: 60_000,
    });
    const metrics = async () => scrape(metricsSocket);
    const roundTrips = async () => metric(await metrics(), 'flexscript_store_round_trips_total');
    let live = 0;
    /** Time spent reading the idle RSS, which is no phase's. */
    let pausedMs = 0;
    /** Waits until the daemon has every live session and nothing queued, and its store writes have stopped. */
    const settled = async (what: string) => {
      let last = -1;
      await waitFor(
        what,
        async () => {
          // a scrape the busy daemon drops is tried again at the next look
          const text = await metrics().catch(() => undefined);
          if (text === undefined) return false;
          const trips = metric(text, 'flexscript_store_round_trips_total');
          const ok = metric(text, 'flexscript_live_sessions') === live && metric(text, 'flexscript_queue_depth') === 0 && trips === last;
          last = trips;
          return ok;
        },
        { timeoutMs, intervalMs: 300 },
      );
    };
    await settled('the daemon to rebuild its (empty) sessions');
    const started = procStatus(daemon.pid, 'VmRSS') ?? 0;
    const baseline = await idleRss(daemon.pid);
    const cpu0 = cpuSeconds(daemon.pid);
    out(`fleet: daemon attached to ${k} servers, RSS ${mb(started)} MB with no session, ${mb(baseline)} MB once idle`);

    const phases: FleetPhase[] = [];
    const checkpoints: FleetCheckpoint[] = [];
    let accepted = 0;
    /** Connects one client (a new one, or one back after the storm) and counts the outcome. */
    const connect = async (instance: FleetInstance, name: string, times: number[], denied: { n: number }): Promise<void> => {
      const r: ConnectOutcome = await instance.connect(name);
      times.push(r.ms);
      if (r.verdict === 'accept') {
        accepted++;
        live++;
      } else denied.n++;
    };
    const phase = async (
      name: FleetPhase['name'],
      events: number,
      run: (times: number[], denied: { n: number }) => Promise<void>,
      perEventTrips = true,
    ): Promise<FleetPhase> => {
      const times: number[] = [];
      const denied = { n: 0 };
      const trips0 = await roundTrips();
      const tx0 = await store.transactions();
      const t0 = performance.now();
      const paused0 = pausedMs;
      await run(times, denied);
      const seconds = (performance.now() - t0 - (pausedMs - paused0)) / 1000;
      await settled(`the daemon to settle after the ${name}`);
      const trips = (await roundTrips()) - trips0;
      const tx1 = await store.transactions();
      const tx = tx0 === undefined || tx1 === undefined ? undefined : tx1 - tx0;
      const round = (n: number) => Math.round(n * 100) / 100;
      const p: FleetPhase = {
        name,
        events,
        seconds: round(seconds),
        perSecond: events > 0 ? Math.round(events / seconds) : 0,
        ...(times.length ? { decisionMs: percentiles(times) } : {}),
        denied: denied.n,
        storeRoundTrips: trips,
        ...(perEventTrips && events > 0 ? { storeRoundTripsPerEvent: round(trips / events) } : {}),
        ...(tx !== undefined && events > 0 ? { transactionsPerEvent: round(tx / events) } : {}),
      };
      phases.push(p);
      const d = p.decisionMs;
      out(
        `fleet: ${name}: ${events} in ${p.seconds} s (${p.perSecond}/s)${d ? `, decision p50 ${d.p50} ms p99 ${d.p99} ms max ${d.max} ms` : ''}, ${trips} store round trips${p.storeRoundTripsPerEvent === undefined ? '' : ` (${p.storeRoundTripsPerEvent} each)`}${denied.n ? `, ${denied.n} denied` : ''}`,
      );
      if (denied.n > 0) errors.push(`${name}: ${denied.n} connects denied`);
      return p;
    };

    // ramp, in segments ending at each checkpoint, with the daemon's memory read when idle
    const marks = [...CHECKPOINTS.filter((c) => c < target), target];
    let connected = 0;
    await phase('ramp', target, async (times, denied) => {
      for (const mark of marks) {
        const from = connected;
        const t0 = performance.now();
        await pool(mark - from, inFlight, (j) => {
          const i = from + j;
          return connect(instances[i % k]!, `fleet-${i}`, times, denied);
        });
        connected = mark;
        const seconds = (performance.now() - t0) / 1000;
        await settled(`the daemon to settle at ${mark} sessions`);
        const rss = procStatus(daemon.pid, 'VmRSS') ?? 0;
        const heap = metric(await metrics(), 'flexscript_nodejs_heap_size_used_bytes');
        const p0 = performance.now();
        const idle = await idleRss(daemon.pid);
        pausedMs += performance.now() - p0;
        const c = {
          sessions: live,
          rssMB: mb(rss),
          heapUsedMB: mb(heap),
          bytesPerSession: Math.round((rss - baseline) / Math.max(1, live)),
          idleRssMB: mb(idle),
          idleBytesPerSession: Math.round((idle - baseline) / Math.max(1, live)),
          connectsPerSecond: Math.round((mark - from) / seconds),
        };
        checkpoints.push(c);
        out(
          `fleet: ${live} live: daemon RSS ${c.rssMB} MB (heap ${c.heapUsedMB} MB), ${c.bytesPerSession} bytes per session; idle ${c.idleRssMB} MB, ${c.idleBytesPerSession} bytes per session; ${c.connectsPerSecond} connects/s in this segment`,
        );
      }
    });
    const firewallElements = env ? staffSetSize(env) : undefined;
    if (firewallElements !== undefined && firewallElements < live) errors.push(`${firewallElements} firewall elements for ${live} live sessions`);

    // renegotiations: a share of the live clients
    const cids = instances.map((f) => f.liveCids());
    const reauths = Math.floor(live * (o.reauth ?? 0.1));
    await phase('reauth', reauths, (times, denied) =>
      pool(reauths, inFlight, async (j) => {
        const f = instances[j % k]!;
        const cid = cids[j % k]![Math.floor(j / k)];
        if (cid === undefined) return;
        const r = await f.reauth(cid);
        times.push(r.ms);
        if (r.verdict !== 'accept') denied.n++;
      }),
    );

    // the storm: a share of every server's clients leave at once and connect again
    const share = o.storm ?? 0.5;
    const leaving = instances.map((f) => {
      const ids = f.liveCids();
      return ids.slice(0, Math.floor(ids.length * share));
    });
    const back = leaving.reduce((n, l) => n + l.length, 0);
    await phase('storm', back, async (times, denied) => {
      const again: { f: FleetInstance; name: string }[] = [];
      for (const [i, f] of instances.entries())
        for (const cid of leaving[i]!) {
          const name = f.disconnect(cid);
          if (name !== undefined) {
            live--;
            again.push({ f, name });
          }
        }
      await pool(again.length, inFlight, (j) => connect(again[j]!.f, again[j]!.name, times, denied));
    });

    // every client leaves
    const leaves = live;
    await phase(
      'leave',
      leaves,
      async () => {
        for (const f of instances) for (const cid of f.liveCids()) if (f.disconnect(cid) !== undefined) live--;
        const none = async () => {
          const text = await metrics().catch(() => undefined);
          return text !== undefined && metric(text, 'flexscript_live_sessions') === 0;
        };
        await waitFor('every session to close', none, { timeoutMs, intervalMs: 100 });
      },
      false,
    );
    const cpu = Math.round((cpuSeconds(daemon.pid) - cpu0) * 100) / 100;
    const peak = procStatus(daemon.pid, 'VmHWM');
    await daemon.stop();
    const counts = await store.counts();
    if (counts.records !== accepted) errors.push(`${counts.records} session records for ${accepted} accepted connects`);
    if (counts.open !== 0) errors.push(`${counts.open} session records still open after every client left`);
    if (counts.closedByDisconnect !== accepted) errors.push(`${counts.closedByDisconnect} records closed by a disconnect for ${accepted} sessions`);
    if (counts.withBytes !== accepted) errors.push(`${counts.withBytes} records with bytes for ${accepted} sessions`);
    const commandErrors = instances.reduce((n, f) => n + f.errors, 0);
    if (commandErrors > 0) errors.push(`${commandErrors} management commands answered ERROR`);
    const first = checkpoints[0];
    const lastCheckpoint = checkpoints.at(-1);
    const result: FleetResult = {
      instances: k,
      sessions: target,
      store: storeKind,
      inFlight,
      pipeline: `${PIPELINE}${env ? '; firewall (each address into its group set through the root stage, sudo, nft)' : '; firewall left out'}`,
      phases,
      checkpoints,
      baselineRssMB: mb(baseline),
      ...(peak ? { peakRssMB: mb(peak) } : {}),
      ...(first && lastCheckpoint && lastCheckpoint.sessions > first.sessions
        ? {
            marginalBytesPerSession: Math.round(((lastCheckpoint.rssMB - first.rssMB) * 1024 * 1024) / (lastCheckpoint.sessions - first.sessions)),
            marginalIdleBytesPerSession: Math.round(((lastCheckpoint.idleRssMB - first.idleRssMB) * 1024 * 1024) / (lastCheckpoint.sessions - first.sessions)),
          }
        : {}),
      daemonCpuSeconds: cpu,
      checks: { acceptedConnects: accepted, ...counts, ...(firewallElements === undefined ? {} : { firewallElements }) },
      errors,
    };
    if (o.json) writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    for (const step of steps.reverse()) await step();
  }
}

/** The result as text: the phases, then memory by live sessions, then the checks. */
export function formatFleet(r: FleetResult): string {
  const lines = [
    `${r.instances} simulated OpenVPN servers, ${r.sessions} sessions, store ${r.store}, ${r.inFlight} connects in flight; pipeline: ${r.pipeline}`,
    '',
    'phase    events  seconds   per s  p50 ms  p99 ms  max ms  store trips/event',
  ];
  for (const p of r.phases)
    lines.push(
      [
        p.name.padEnd(6),
        String(p.events).padStart(8),
        p.seconds.toFixed(2).padStart(8),
        String(p.perSecond).padStart(7),
        (p.decisionMs?.p50.toFixed(1) ?? '-').padStart(7),
        (p.decisionMs?.p99.toFixed(1) ?? '-').padStart(7),
        (p.decisionMs?.max.toFixed(1) ?? '-').padStart(7),
        String(p.storeRoundTripsPerEvent ?? '-').padStart(18),
      ].join(' '),
    );
  lines.push('', `daemon RSS: ${r.baselineRssMB} MB with no session (idle), peak ${r.peakRssMB ?? '-'} MB; CPU ${r.daemonCpuSeconds} s`);
  for (const c of r.checkpoints)
    lines.push(
      `  ${String(c.sessions).padStart(7)} live: ${c.rssMB} MB settled (heap in use ${c.heapUsedMB} MB), ${c.bytesPerSession} bytes per session; ${c.idleRssMB} MB idle, ${c.idleBytesPerSession} bytes per session`,
    );
  if (r.marginalBytesPerSession !== undefined)
    lines.push(`  ${r.marginalBytesPerSession} bytes more per session from the first checkpoint to the last (${r.marginalIdleBytesPerSession} idle to idle)`);
  const c = r.checks;
  lines.push(
    '',
    `records: ${c.records} for ${c.acceptedConnects} accepted connects, ${c.open} open, ${c.closedByDisconnect} closed by a disconnect (${c.closedAsMissed} as missed, ${c.closedAsKilled} as killed), ${c.withBytes} with bytes${c.firewallElements === undefined ? '' : `; ${c.firewallElements} firewall elements after the ramp`}`,
  );
  lines.push(r.errors.length ? `PROBLEMS: ${r.errors.join('; ')}` : 'nothing lost');
  return lines.join('\n');
}

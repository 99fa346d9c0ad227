/**
 * @module daemon-process
 * Starts the real daemon (`flexscript run`) as an unprivileged user, as an operator would, and
 * watches what it does: its channel messages through the control socket's `watch` (`events()`,
 * `waitForEvent`), and its JSON log for what an operator reads (`logs()`, `waitForLog`). For the
 * demo, the benchmark and the end-to-end tests.
 *
 * A config without `control:` gets one appended (a socket in a folder next to the log), so every
 * lab daemon can be watched; the watch opens as soon as the socket answers, and the daemon keeps
 * what happened since its start for that first watcher, so no event is missed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, mkdirSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load-config.ts';
import { openWatch, type WatchConnection } from '../observe/watch-client.ts';
import type { WatchLine } from '../observe/watch-feed.ts';
import type { DecisionMessage, LifecycleMessage } from '../observe/channels.ts';
import { ensureFreshBuild } from './fresh-build.ts';
import { asUser, inNetns } from './server-process.ts';
import { waitFor } from './wait.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
// loaded from the sources (tests): the processes started here run dist/, built from them
if (import.meta.url.endsWith('.ts')) ensureFreshBuild(REPO);
export const FLEXSCRIPT = join(REPO, 'bin/flexscript.js');
export const HOOK = join(REPO, 'hook/flexscript-hook');

/** nobody/nogroup on Debian: the user OpenVPN drops to in the lab. */
export const RUN_AS = { user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 };

type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** One message the daemon published (src/observe/channels.ts), as its watch feed sends it. */
export type DaemonEvent = WatchLine;
export type DecisionEvent = Extract<DaemonEvent, { channel: 'decision' }>;
export type LifecycleEvent = Extract<DaemonEvent, { channel: 'lifecycle' }>;

/** Matches a decision whose fields equal those given, e.g. `decisionOf({ event: 'client-connect', verdict: 'deny' })`. */
export function decisionOf(match: Partial<DecisionMessage>): (e: DaemonEvent) => e is DecisionEvent {
  return (e): e is DecisionEvent => e.channel === 'decision' && Object.entries(match).every(([k, v]) => e.data[k as keyof DecisionMessage] === v);
}

/** Matches a lifecycle step, and optionally more of its fields. */
export function lifecycleOf<W extends LifecycleMessage['what']>(
  what: W,
  match: (m: Extract<LifecycleMessage, { what: W }>) => boolean = () => true,
): (e: DaemonEvent) => e is LifecycleEvent & { data: Extract<LifecycleMessage, { what: W }> } {
  return (e): e is LifecycleEvent & { data: Extract<LifecycleMessage, { what: W }> } =>
    e.channel === 'lifecycle' && e.data.what === what && match(e.data as Extract<LifecycleMessage, { what: W }>);
}

export interface DaemonHandle {
  readonly pid: number;
  readonly logPath: string;
  readonly configPath: string;
  /** The daemon's control socket, which the handle watches. */
  readonly controlSocket: string | undefined;
  /** What the daemon has published since it started, in order. */
  events(): DaemonEvent[];
  /** The first event (since start) for which `pred` holds; waits for it. */
  waitForEvent<E extends DaemonEvent>(what: string, pred: (e: DaemonEvent) => e is E, timeoutMs?: number): Promise<E>;
  waitForEvent(what: string, pred: (e: DaemonEvent) => boolean, timeoutMs?: number): Promise<DaemonEvent>;
  /** The operator's log: for checking that something is logged, not for behaviour. */
  logs(): LogLine[];
  waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM and wait for exit (SIGKILL after a while); idempotent. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/** A directory the unprivileged daemon owns (runtime dir, recorder output). */
export function ownedDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o770 });
  chownSync(path, RUN_AS.uid, RUN_AS.gid);
  return path;
}

export function writeConfig(dir: string, yaml: string): string {
  const path = join(dir, 'flexscript.yaml');
  writeFileSync(path, yaml, { mode: 0o644 });
  return path;
}

export function readJsonLines(path: string): Record<string, unknown>[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The control socket of the config at `configPath`, adding a `control:` section when it has
 * none. Undefined for a config that does not parse (a daemon meant to fail).
 */
function controlSocketOf(configPath: string, logPath: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
    const control = parseConfig(text, configPath).config.control;
    if (control) return control.socket;
  } catch {
    return undefined;
  }
  const socket = join(ownedDir(join(dirname(logPath), 'watch')), 'control.sock');
  appendFileSync(configPath, `${text.endsWith('\n') ? '' : '\n'}# added by the lab, to watch the daemon\ncontrol:\n  socket: ${socket}\n`);
  return socket;
}

export interface StartOptions {
  /** Wait until the daemon has started (default true). */
  readonly wait?: boolean;
  readonly netns?: string;
  /**
   * Watch the daemon (default true). The benchmark turns it off: a watcher makes the daemon
   * publish every event, which is work the measured daemon should not do.
   */
  readonly watch?: boolean;
}

export async function startDaemon(configPath: string, logPath: string, opts: StartOptions = {}): Promise<DaemonHandle> {
  const controlSocket = opts.watch === false ? undefined : controlSocketOf(configPath, logPath);
  const fd = openSync(logPath, 'a', 0o644);
  // FXS_DAEMON_NODE_ARGS passes Node flags to the daemon, e.g. --cpu-prof for profiling
  const nodeArgs = process.env.FXS_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const argv = inNetns(opts.netns, asUser({ uid: RUN_AS.user, gid: RUN_AS.group }, [process.execPath, ...nodeArgs, FLEXSCRIPT, 'run', '--config', configPath]));
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' } });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const events: DaemonEvent[] = [];
  let watch: WatchConnection | undefined;
  let watchProblem: string | undefined = controlSocket ? undefined : `${configPath}: the daemon is not watched (no control socket, or watch: false)`;
  // opened as soon as the socket answers; the daemon keeps its messages since start for it
  void (async () => {
    if (!controlSocket) return;
    try {
      watch = await waitFor(
        'the control socket to take a watcher',
        async () => {
          if (done) throw new Error('the daemon exited before its control socket answered');
          return openWatch(controlSocket, (e) => void events.push(e), 5_000).catch(() => undefined);
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      if (done) watch.close();
    } catch (err) {
      watchProblem = err instanceof Error ? err.message : String(err);
    }
  })();
  const logs = () =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine)
      // a restarted daemon appends to the same file: only this process's lines count
      .filter((l) => l.pid === child.pid);
  const handle: DaemonHandle = {
    pid: child.pid!,
    logPath,
    configPath,
    controlSocket,
    events: () => [...events],
    waitForEvent: (what: string, pred: (e: DaemonEvent) => boolean, timeoutMs = 30_000): Promise<never> =>
      waitFor<never>(
        what,
        () => {
          const found = events.find(pred);
          if (found) return found as never;
          if (watchProblem) throw new Error(`cannot watch the daemon while waiting for ${what}: ${watchProblem}`);
          if (done) throw new Error(`daemon exited while waiting for ${what}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
          return undefined;
        },
        { timeoutMs },
      ),
    logs,
    exited,
    waitForLog: (what, pred, timeoutMs = 30_000) =>
      waitFor(
        what,
        () => {
          if (done) throw new Error(`daemon exited while waiting for ${what}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`);
          return logs().find(pred);
        },
        { timeoutMs },
      ),
    signal: (sig) => {
      if (!done) child.kill(sig);
    },
    stop: async () => {
      // the watch ends with the daemon, after its last messages
      if (!done) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  void exited.then(() => watch?.close());
  if (opts.wait === false) return handle;
  if (controlSocket) await handle.waitForEvent('daemon start', lifecycleOf('started'), 60_000);
  else await handle.waitForLog('daemon start', (l) => l.msg === 'flexscript daemon started', 60_000);
  return handle;
}

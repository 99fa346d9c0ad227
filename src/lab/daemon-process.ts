/**
 * @module daemon-process
 * Starts the real daemon (`flexscript run`) as an unprivileged user, as an operator would, and
 * reads its JSON log: for the demo, the benchmark and the end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFreshBuild } from './fresh-build.ts';
import { waitFor } from './wait.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
// loaded from the sources (tests): the processes started here run dist/, built from them
if (import.meta.url.endsWith('.ts')) ensureFreshBuild(REPO);
export const FLEXSCRIPT = join(REPO, 'bin/flexscript.js');
export const HOOK = join(REPO, 'hook/flexscript-hook');

/** nobody/nogroup on Debian: the user OpenVPN drops to in the lab. */
export const RUN_AS = { user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 };

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface DaemonHandle {
  readonly pid: number;
  readonly logPath: string;
  readonly configPath: string;
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

export async function startDaemon(configPath: string, logPath: string, opts: { wait?: boolean; netns?: string } = {}): Promise<DaemonHandle> {
  const fd = openSync(logPath, 'a', 0o644);
  // FXS_DAEMON_NODE_ARGS passes Node flags to the daemon, e.g. --cpu-prof for profiling
  const nodeArgs = process.env.FXS_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const setpriv = [
    'setpriv',
    '--reuid',
    RUN_AS.user,
    '--regid',
    RUN_AS.group,
    '--clear-groups',
    '--',
    process.execPath,
    ...nodeArgs,
    FLEXSCRIPT,
    'run',
    '--config',
    configPath,
  ];
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...setpriv] : setpriv;
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' } });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
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
      if (!done) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  if (opts.wait !== false) await handle.waitForLog('daemon start', (l) => l.msg === 'flexscript daemon started');
  return handle;
}

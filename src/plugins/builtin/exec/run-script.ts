/**
 * @module run-script
 * Runs one legacy hook script as OpenVPN would: the program itself with an argv list (never a
 * shell), the given env as data, in its own process group so a time limit kills the script and
 * everything it started. The run ends when the script exits: a process that left the group
 * (`setsid cmd &`) and still holds its output pipes does not keep the run, its concurrency slot
 * or its temporary files alive. Output lines go to a callback, bounded in count and length.
 */
import { spawn } from 'node:child_process';

export interface ScriptRun {
  readonly path: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Called with each output line (at most `maxLines`, each cut at `maxLineLength`). */
  readonly output?: (stream: 'stdout' | 'stderr', line: string) => void;
  readonly maxLines?: number;
  readonly maxLineLength?: number;
}

export interface ScriptResult {
  /** The exit code, or null when killed. */
  readonly code: number | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
}

/**
 * After the script exits, how long its output pipes may stay open. A process the script started
 * in a session of its own (`setsid cmd &`) escapes the group kill and keeps the pipes open: the
 * run must not wait for it, so reading stops and the pipes are closed on this side.
 */
const DRAIN_MS = 250;

/**
 * Runs the script; resolves once it has exited (or was killed at the time limit or on abort),
 * never later than DRAIN_MS after that, whatever its descendants do with its pipes.
 */
export function runScript(run: ScriptRun): Promise<ScriptResult> {
  const maxLines = run.maxLines ?? 100;
  const maxLength = run.maxLineLength ?? 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(run.path, [...run.args], { env: run.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
    let timedOut = false;
    let aborted = false;
    let exitCode: number | null = null;
    let lines = 0;
    let drain: NodeJS.Timeout | undefined;
    let settled = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, run.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });
    const flushes: (() => void)[] = [];
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      run.signal?.removeEventListener('abort', onAbort);
      for (const flush of flushes) flush();
      // stop reading: a pipe still held by an escaped process must not keep this run (or its
      // file descriptors) alive
      child.stdout.destroy();
      child.stderr.destroy();
      if (err) reject(err);
      else resolve({ code: timedOut || aborted ? null : exitCode, timedOut, aborted });
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      let pending = '';
      const emit = (line: string) => {
        if (lines < maxLines) run.output?.(stream, line.length > maxLength ? `${line.slice(0, maxLength)}...` : line);
        else if (lines === maxLines) run.output?.(stream, '(further output dropped)');
        lines++;
      };
      const flush = () => {
        if (pending) emit(pending);
        pending = '';
      };
      flushes.push(flush);
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk: string) => {
        if (settled) return;
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          emit(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
        // a line without end is still bounded
        if (pending.length > maxLength) flush();
      });
      child[stream].on('end', flush);
      // a destroyed stream may report an error; the run's result does not depend on it
      child[stream].on('error', () => {});
    }
    child.on('error', (err) => {
      killGroup();
      settle(err);
    });
    child.on('exit', (code) => {
      exitCode = code;
      // the script is done: the limits no longer apply to the pipes' draining
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      // a background process the script left in its group must not outlive it
      killGroup();
      // output already written is still read, for a moment
      drain = setTimeout(() => settle(), DRAIN_MS);
    });
    // both pipes closed after the exit: everything was read
    child.on('close', () => settle());
  });
}

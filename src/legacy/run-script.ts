/**
 * @module run-script
 * Runs one legacy hook script as OpenVPN would: the program itself with an argv list (never a
 * shell), the given env as data, in its own process group so a time limit kills the script and
 * everything it started. Output lines go to a callback, bounded in count and length.
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

export function runScript(run: ScriptRun): Promise<ScriptResult> {
  const maxLines = run.maxLines ?? 100;
  const maxLength = run.maxLineLength ?? 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(run.path, [...run.args], { env: run.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
    let timedOut = false;
    let aborted = false;
    let lines = 0;
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
    for (const stream of ['stdout', 'stderr'] as const) {
      let pending = '';
      const emit = (line: string) => {
        if (lines < maxLines) run.output?.(stream, line.length > maxLength ? `${line.slice(0, maxLength)}...` : line);
        else if (lines === maxLines) run.output?.(stream, '(further output dropped)');
        lines++;
      };
      child[stream].setEncoding('utf8');
      child[stream].on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          emit(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
        // a line without end is still bounded
        if (pending.length > maxLength) {
          emit(pending);
          pending = '';
        }
      });
      child[stream].on('end', () => pending && emit(pending));
    }
    child.on('error', (err) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      // a background process the script left behind must not outlive it
      killGroup();
      resolve({ code: timedOut || aborted ? null : code, timedOut, aborted });
    });
  });
}

/** A counting semaphore: at most `limit` runs at once, the rest wait in order. */
export class Limiter {
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}

  get queued(): number {
    return this.#waiting.length;
  }

  async run<T>(step: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#running >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener('abort', drop);
          resolve();
        };
        const drop = () => {
          const i = this.#waiting.indexOf(go);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(signal?.reason ?? new Error('aborted while queued'));
        };
        if (signal?.aborted) return drop();
        signal?.addEventListener('abort', drop, { once: true });
        this.#waiting.push(go);
      });
    }
    this.#running++;
    try {
      return await step();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}

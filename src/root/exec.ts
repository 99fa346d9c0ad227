/**
 * @module exec
 * Runs the few system tools the root stage uses (nft, ip, conntrack): always an argv list,
 * never a shell; tools are found only in the system directories, never through PATH; a minimal
 * environment; a time limit; bounded output.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { RootError, RootErrorCode } from './protocol.ts';

export type ToolName = 'nft' | 'ip' | 'conntrack';

/** Where system tools live; PATH is not trusted as root. */
const TOOL_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

const INSTALL_HINT: Record<ToolName, string> = { nft: 'nftables', ip: 'iproute2', conntrack: 'conntrack' };

/** Absolute path of a tool, or a TOOL_MISSING error naming the package to install. */
export function findTool(name: ToolName, dirs: readonly string[] = TOOL_DIRS): string {
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next directory
    }
  }
  throw new RootError(RootErrorCode.TOOL_MISSING, `${name} is not installed (looked in ${dirs.join(', ')}; install the ${INSTALL_HINT[name]} package)`);
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the tool's stdin, which is then closed. */
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Per stream; output beyond it fails the run. */
  readonly maxOutputBytes?: number;
}

/** A function with the shape of `run`, so tests can stand in for the real tools. */
export type Runner = (file: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Runs `file` with `args` (no shell) and collects its output; rejects only if it cannot run. */
export const run: Runner = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const max = options.maxOutputBytes ?? 64 * 1024 * 1024;
    const child = spawn(file, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: TOOL_DIRS.join(':'), LC_ALL: 'C' },
      timeout: options.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    let errSize = 0;
    let overflow = false;
    child.stdout.on('data', (b: Buffer) => {
      outSize += b.length;
      if (outSize > max) {
        overflow = true;
        child.kill('SIGKILL');
      } else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      errSize += b.length;
      if (errSize <= max) err.push(b);
    });
    child.on('error', (e) => reject(new RootError(RootErrorCode.INTERNAL, `cannot run ${file}: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (overflow) reject(new RootError(RootErrorCode.INTERNAL, `${file} wrote more than ${max} bytes`));
      else resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    // a tool that exits before reading all its input must not crash us with EPIPE
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });

/** The first lines of a tool's stderr, for an error message. */
export function firstLines(text: string, n = 4): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, n)
    .join(' | ');
}

/**
 * A runner that starts at most `max` processes at once (the rest wait their turn, in order),
 * so no burst of requests can make the root stage fork without bound.
 */
export function limitProcesses(runner: Runner, max: number): Runner & { readonly running: () => number; readonly waiting: () => number } {
  if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be a positive integer');
  let running = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    running -= 1;
    const next = queue.shift();
    if (next) {
      running += 1;
      next();
    }
  };
  const limited: Runner = (file, args, options) => {
    const go = () => {
      const result = runner(file, args, options);
      void result.then(release, release);
      return result;
    };
    if (running < max) {
      running += 1;
      return go();
    }
    return new Promise((resolve, reject) => queue.push(() => go().then(resolve, reject)));
  };
  return Object.assign(limited, { running: () => running, waiting: () => queue.length });
}

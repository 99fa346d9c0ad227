/**
 * @module harness
 * What the real root-stage test needs: a throwaway network namespace (so the host's nftables
 * and routes are never touched), a temporary sudoers drop-in, the unprivileged driver and the
 * root stage spoken to directly. Everything here is started by the test and has a cleanup.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFreshBuild } from '../../src/lab/fresh-build.ts';
import { readLines } from '../../src/root/line-reader.ts';
import { checkSudoers, rootCommand, sudoersDropIn } from '../../src/root/sudoers.ts';
import { waitFor } from './wait.ts';

export const PROJECT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
// the root stage runs dist/root, built from the sources these tests read
ensureFreshBuild(PROJECT);
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (argv, no shell) and collects its output; never rejects on a non-zero exit. */
export function run(argv: readonly string[], input?: string): Promise<Output> {
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = argv as [string, ...string[]];
    const child = execFile(file, args, { env: { PATH: SYSTEM_PATH }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
      else resolvePromise({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    // a command that exits without reading its input leaves a broken pipe; its exit is what counts
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

export async function runOk(argv: readonly string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export const uniqueSuffix = () => randomBytes(4).toString('hex');

/** A network namespace with a tun device `fxs0` standing in for OpenVPN's. */
export class Netns {
  readonly name = `fxs-root-${uniqueSuffix()}`;

  async create(): Promise<void> {
    await runOk(['ip', 'netns', 'add', this.name]);
    await runOk(['ip', '-n', this.name, 'link', 'set', 'lo', 'up']);
    // this kernel has no dummy driver; a persistent tun device works as the VPN interface
    await runOk(['ip', '-n', this.name, 'tuntap', 'add', 'fxs0', 'mode', 'tun']);
    await runOk(['ip', '-n', this.name, 'link', 'set', 'fxs0', 'up']);
    await runOk(['ip', '-n', this.name, 'addr', 'add', '10.8.0.1/24', 'dev', 'fxs0']);
    await runOk(['ip', '-n', this.name, '-6', 'addr', 'add', 'fd00:8::1/64', 'dev', 'fxs0', 'nodad']);
  }

  exec(argv: readonly string[]): Promise<Output> {
    return run(['ip', 'netns', 'exec', this.name, ...argv]);
  }

  async ruleset(): Promise<string> {
    return runOk(['ip', 'netns', 'exec', this.name, 'nft', '-j', 'list', 'ruleset']);
  }

  async setElements(table: string, set: string): Promise<string[]> {
    const out = await runOk(['ip', 'netns', 'exec', this.name, 'nft', '-j', 'list', 'set', 'inet', table, set]);
    const doc = JSON.parse(out) as { nftables: { set?: { elem?: string[] } }[] };
    return doc.nftables.find((i) => i.set)?.set?.elem ?? [];
  }

  async routes(proto: number): Promise<{ dst: string; gateway?: string; dev?: string; table?: string }[]> {
    return JSON.parse(await runOk(['ip', '-n', this.name, '-N', '-d', '-j', 'route', 'show', 'table', 'all', 'proto', String(proto)])) as never;
  }

  async delete(): Promise<void> {
    await run(['ip', 'netns', 'del', this.name]);
  }
}

/** A directory whose parents are all root-owned and not writable by others (unlike /tmp). */
export async function trustedTempDir(prefix: string): Promise<string> {
  const base = join(PROJECT, '.tmp');
  await mkdir(base, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(base, prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** Pids of the root stages started (through sudo) with this root config. */
export async function rootStagesOf(rootConfig: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('flexscript-root.js') && cmd.includes(rootConfig) && !cmd.startsWith('sudo')) pids.push(Number(name));
  }
  return pids;
}

/** Installs a validated drop-in allowing `user` exactly `command`; returns its path. */
export async function installSudoers(user: string, command: readonly string[], scratchDir: string): Promise<string> {
  const text = sudoersDropIn({ user, command });
  const draft = join(scratchDir, 'sudoers-draft');
  await writeFile(draft, text, { mode: 0o440 });
  // a broken file in /etc/sudoers.d breaks sudo for everyone: validate before installing
  await checkSudoers(draft);
  // no dot in the name: sudo's includedir skips files containing one
  const file = `/etc/sudoers.d/fxs-root-test-${uniqueSuffix()}`;
  await writeFile(file, text, { mode: 0o440, flag: 'wx' });
  return file;
}

export interface LogRecord {
  level: string;
  msg: string;
  fields: Record<string, unknown> & { root?: Record<string, unknown> };
}

/** Pids of root stages seen in logs, so cleanup can end any still running. */
export const rootStagePids = new Set<number>();
export const rootScratchDirs = new Set<string>();

function noteReady(root: Record<string, unknown> | undefined): void {
  if (typeof root?.pid === 'number') rootStagePids.add(root.pid);
  if (typeof root?.scratch === 'string') rootScratchDirs.add(root.scratch);
}

/** The unprivileged driver (test/root/driver.ts) running as nobody in the namespace. */
export class Driver {
  readonly child: ChildProcessWithoutNullStreams;
  readonly logs: LogRecord[] = [];
  readonly events: { event: string; seq: number }[] = [];
  readonly stderr: string[] = [];
  #seq = 0;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(ns: Netns, config: string) {
    const argv = [
      'netns',
      'exec',
      ns.name,
      'setpriv',
      '--reuid',
      'nobody',
      '--regid',
      'nogroup',
      '--clear-groups',
      '--',
      process.execPath,
      '--import',
      'tsx',
      'test/root/driver.ts',
      config,
    ];
    this.child = spawn('ip', argv, { cwd: PROJECT, env: { PATH: SYSTEM_PATH, TSX_DISABLE_CACHE: '1', HOME: '/nonexistent' }, stdio: ['pipe', 'pipe', 'pipe'] });
    readLines(this.child.stdout, 64 * 1024 * 1024, {
      line: (text) => {
        const msg = JSON.parse(text) as {
          seq?: number;
          ok?: boolean;
          result?: unknown;
          error?: { code: string; message: string };
          log?: LogRecord;
          event?: string;
        };
        if (msg.log) {
          this.logs.push(msg.log);
          if (msg.log.msg === 'flexscript-root: ready') noteReady(msg.log.fields.root);
        } else if (msg.event !== undefined && msg.seq !== undefined) {
          this.events.push({ event: msg.event, seq: msg.seq });
        } else if (msg.seq !== undefined) {
          const w = this.#waiting.get(msg.seq);
          this.#waiting.delete(msg.seq);
          if (msg.ok) w?.resolve(msg.result);
          else w?.reject(Object.assign(new Error(msg.error?.message ?? 'failed'), { code: msg.error?.code }));
        }
      },
    });
    readLines(this.child.stderr, 1024 * 1024, { line: (t) => void this.stderr.push(t) });
    // a driver that was killed leaves a broken pipe; its exit is handled below
    this.child.stdin.on('error', () => {});
    this.child.on('close', () => {
      for (const w of this.#waiting.values()) w.reject(new Error(`driver exited; stderr: ${this.stderr.join('\n')}`));
      this.#waiting.clear();
    });
  }

  /** Sends one command and waits for its answer (rejects with `.code` on failure). */
  send<T = unknown>(op: string, extra: Record<string, unknown> = {}): Promise<T> {
    const seq = ++this.#seq;
    return new Promise<T>((resolvePromise, reject) => {
      this.#waiting.set(seq, { resolve: resolvePromise as (v: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ seq, op, ...extra })}\n`);
    });
  }

  /** Sends a command without waiting; returns its seq and the answer's promise. */
  sendLater<T = unknown>(op: string, extra: Record<string, unknown> = {}): { seq: number; answer: Promise<T> } {
    const answer = this.send<T>(op, extra);
    return { seq: this.#seq, answer };
  }

  call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.send<T>('call', { method, args });
  }

  async stats(): Promise<{ state: string; pid?: number; starts: number; exits: number; reconciles: number }> {
    return this.send('stats');
  }

  /** The pid of the root stage that logged `ready` last. */
  lastRootPid(): number | undefined {
    const ready = this.logs.filter((l) => l.msg === 'flexscript-root: ready').at(-1);
    return ready?.fields.root?.pid as number | undefined;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** flexscript-root started directly (as root, in the namespace), spoken to line by line. */
export class DirectStage {
  readonly child: ChildProcessWithoutNullStreams;
  readonly logs: Record<string, unknown>[] = [];
  readonly responses: Record<string, unknown>[] = [];
  readonly exited: Promise<number | null>;

  /**
   * `asDaemon`: started the way the daemon (or anyone running as nobody) can: `sudo -n` as
   * nobody, with the sudoers drop-in the test installed; otherwise as root directly.
   */
  constructor(ns: Netns, config: string, options: { asDaemon?: boolean } = {}) {
    const stage = options.asDaemon
      ? ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--', 'sudo', '-n', ...rootCommand(config)]
      : [process.execPath, join(PROJECT, 'bin', 'flexscript-root.js'), '--config', config];
    this.child = spawn('ip', ['netns', 'exec', ns.name, ...stage], {
      env: { PATH: SYSTEM_PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdin.on('error', () => {});
    readLines(this.child.stdout, 64 * 1024 * 1024, { line: (t) => void this.responses.push(JSON.parse(t) as Record<string, unknown>) });
    readLines(this.child.stderr, 1024 * 1024, {
      line: (t) => {
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(t) as Record<string, unknown>;
        } catch {
          // sudo's own messages are plain text
          record = { level: 'sudo', msg: t };
        }
        this.logs.push(record);
        if (record.msg === 'ready') noteReady(record);
      },
    });
    this.exited = new Promise((r) => this.child.on('close', (code) => r(code)));
  }

  ready(): Promise<unknown> {
    return waitFor('the root stage to be ready', () => this.logs.find((l) => l.msg === 'ready'));
  }

  /** Writes raw bytes and waits for the next response. */
  async send(raw: string | Buffer): Promise<Record<string, unknown>> {
    const before = this.responses.length;
    this.child.stdin.write(raw);
    return waitFor(`an answer to ${String(raw).slice(0, 80)}`, () => this.responses[before]);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Ends root stages still alive (only those this test started: their pids came from their logs). */
export async function cleanupRootStages(): Promise<void> {
  for (const pid of rootStagePids) {
    // only if that pid is still a flexscript-root (pids are reused)
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('flexscript-root.js')) process.kill(pid, 'SIGKILL');
  }
  for (const dir of rootScratchDirs) await rm(dir, { recursive: true, force: true });
}

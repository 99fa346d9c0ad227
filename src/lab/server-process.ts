/**
 * @module server-process
 * How the lab runs the servers its tests talk to (slapd, Samba, PostgreSQL): as another user
 * where the server must not run as root, inside a network namespace where asked, its output
 * kept for the error that says why it did not come up, stopped with SIGTERM and, when that is
 * not enough, SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A TCP port on a loopback address that is free now (the kernel picks it). */
export function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A user and group, by number or name. */
export interface Account {
  readonly uid: number | string;
  readonly gid: number | string;
}

/** `argv` run as `account` (setpriv, without supplementary groups); as it is without one. */
export function asUser(account: Account | undefined, argv: readonly string[]): string[] {
  return account ? ['setpriv', '--reuid', String(account.uid), '--regid', String(account.gid), '--clear-groups', '--', ...argv] : [...argv];
}

/** `argv` run inside network namespace `netns` (`ip netns exec` execs it: the pid stays the command's); as it is without one. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
}

export interface ServerOptions {
  readonly user?: Account;
  /** Runs the server inside this network namespace. */
  readonly netns?: string;
  /** Keeps the server's stdin open: a server that exits when it closes then ends with this process too. */
  readonly keepStdin?: boolean;
}

export interface ServerProcess {
  readonly running: boolean;
  /** What the server wrote so far (the last 20,000 characters). */
  output(): string;
  /** SIGTERM, and SIGKILL after 5 s; resolves once the server exited (at once when it had). */
  stop(): Promise<void>;
}

const OUTPUT_KEPT = 20_000;
const STOP_GRACE_MS = 5000;

/** Starts a server in the foreground; the caller waits for it to answer. */
export function spawnServer(argv: readonly string[], o: ServerOptions = {}): ServerProcess {
  const full = inNetns(o.netns, asUser(o.user, argv));
  const child: ChildProcess = spawn(full[0]!, full.slice(1), { stdio: [o.keepStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-OUTPUT_KEPT));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    get running() {
      return running();
    },
    output: () => output,
    async stop() {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * @module openvpn-process
 * Real OpenVPN processes for the demo, the benchmark and the tests: a server that drops to an
 * unprivileged user, and cheap clients (`--dev null`, no tun device each) so hundreds fit on
 * one machine. Each process logs to its own file, which is how its state is observed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { answerClient, answerConfig, type ClientAnswers, type ClientQuestion } from './client-answers.ts';
import type { Pki } from './pki.ts';
import { waitFor } from './wait.ts';

export interface ManagedProcess {
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit code (null after a signal) when the process has exited. */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  log(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL if it lingers; resolves when it has exited. Idempotent. */
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/** OpenVPN's binary; Debian installs it in /usr/sbin, which a non-root PATH may lack. */
export function openvpnBinary(): string {
  return (
    ['/usr/sbin/openvpn', '/usr/bin/openvpn', '/usr/local/sbin/openvpn'].find((p) => {
      try {
        closeSync(openSync(p, 'r'));
        return true;
      } catch {
        return false;
      }
    }) ?? 'openvpn'
  );
}

/** Starts a program, inside a network namespace when `netns` is given (`ip netns exec` execs it: same pid). */
export function startProcess(command: string, args: string[], logPath: string, netns?: string): ManagedProcess {
  const fd = openSync(logPath, 'a', 0o644);
  const argv = netns ? (['ip', ['netns', 'exec', netns, command, ...args]] as const) : ([command, args] as const);
  const child: ChildProcess = spawn(argv[0], argv[1], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      running = false;
      resolve(code);
    });
    child.on('error', () => {
      running = false;
      resolve(null);
    });
  });
  const read = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    pid: child.pid ?? -1,
    logPath,
    exited,
    get running() {
      return running;
    },
    log: read,
    waitForLog: (re, timeoutMs = 30_000) => waitFor(`${re} in ${logPath}`, () => read().match(re) ?? undefined, { timeoutMs, intervalMs: 100 }),
    kill: (signal) => {
      if (running) child.kill(signal);
    },
    stop: async () => {
      if (!running) return void (await exited);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface ServerOptions {
  readonly dir: string;
  readonly pki: Pki;
  readonly port: number;
  readonly proto?: 'udp' | 'tcp';
  /** The VPN network, such as 10.77.3.0. */
  readonly subnet: string;
  /** Its netmask (default a /24: 253 clients; a storm of more needs a wider pool). */
  readonly netmask?: string;
  /** A tun device name unique on the machine. */
  readonly dev: string;
  readonly user?: string;
  readonly group?: string;
  readonly extraConfig?: readonly string[];
  /** Run inside this network namespace (its loopback must be up). */
  readonly netns?: string;
}

export interface OpenVpnServer extends ManagedProcess {
  readonly configPath: string;
  readonly options: ServerOptions;
}

export async function startServer(o: ServerOptions): Promise<OpenVpnServer> {
  await mkdir(o.dir, { recursive: true, mode: 0o755 });
  const tmp = join(o.dir, 'tmp');
  await mkdir(tmp, { recursive: true });
  // deferral and auth files are created here after the privilege drop
  await chmod(tmp, 0o1777);
  const user = o.user ?? 'nobody';
  const group = o.group ?? 'nogroup';
  const config = [
    `port ${o.port}`,
    `proto ${o.proto === 'tcp' ? 'tcp-server' : 'udp'}`,
    'local 127.0.0.1',
    `dev ${o.dev}`,
    'dev-type tun',
    'topology subnet',
    `server ${o.subnet} ${o.netmask ?? '255.255.255.0'}`,
    `ca ${o.pki.caCert}`,
    `cert ${o.pki.serverCert}`,
    `key ${o.pki.serverKey}`,
    'dh none',
    `user ${user}`,
    `group ${group}`,
    'persist-key',
    'persist-tun',
    'keepalive 10 60',
    'max-clients 4000',
    `tmp-dir ${tmp}`,
    'verb 3',
    ...(o.extraConfig ?? []),
  ];
  const configPath = join(o.dir, 'server.conf');
  await writeFile(configPath, `${config.join('\n')}\n`, { mode: 0o644 });
  const proc = startProcess(openvpnBinary(), ['--config', configPath], join(o.dir, 'server.log'), o.netns);
  return extend(proc, { configPath, options: o });
}

export interface ClientOptions {
  readonly dir: string;
  readonly pki: Pki;
  readonly commonName: string;
  readonly port: number;
  readonly proto?: 'udp' | 'tcp';
  readonly username?: string;
  readonly password?: string;
  readonly extraConfig?: readonly string[];
  /** Run inside this network namespace (the server's, to reach its loopback). */
  readonly netns?: string;
  /**
   * Credentials and challenge answers given as a VPN GUI gives them, over the client's own
   * management interface (instead of `username`/`password` in an auth file).
   */
  readonly answers?: ClientAnswers;
}

export interface OpenVpnClient extends ManagedProcess {
  readonly commonName: string;
  /** The questions the client was asked (with `answers`), in order. */
  readonly questions: readonly ClientQuestion[];
  waitConnected(timeoutMs?: number): Promise<void>;
  waitAuthFailed(timeoutMs?: number): Promise<void>;
  /** The PUSH_REPLY the client received, if any. */
  pushReply(): string | undefined;
}

let clientCounter = 0;

export async function startClient(o: ClientOptions): Promise<OpenVpnClient> {
  const n = ++clientCounter;
  await mkdir(o.dir, { recursive: true });
  const { cert, key } = await o.pki.issueClient(o.commonName);
  const config = [
    'client',
    // no tun device per client: the TLS handshake, push and server-side hooks still happen
    'dev null',
    'ifconfig-noexec',
    'route-noexec',
    'nobind',
    `remote 127.0.0.1 ${o.port} ${o.proto === 'tcp' ? 'tcp-client' : 'udp'}`,
    `ca ${o.pki.caCert}`,
    `cert ${cert}`,
    `key ${key}`,
    'remote-cert-tls server',
    'connect-retry 1 1',
    // a UDP client waiting for a server backs off (2, 4, 8 s...); restart the attempt sooner
    'server-poll-timeout 10',
    'auth-retry none',
    'verb 3',
  ];
  if (o.username !== undefined) {
    const auth = join(o.dir, `client-${process.pid}-${n}.auth`);
    await writeFile(auth, `${o.username}\n${o.password ?? ''}\n`, { mode: 0o600 });
    config.push(`auth-user-pass ${auth}`);
  }
  const socket = join(o.dir, `client-${process.pid}-${n}.sock`);
  if (o.answers) config.push(...answerConfig(socket, o.answers));
  config.push(...(o.extraConfig ?? []));
  const configPath = join(o.dir, `client-${process.pid}-${n}.conf`);
  await writeFile(configPath, `${config.join('\n')}\n`);
  const started = startProcess(openvpnBinary(), ['--config', configPath], join(o.dir, `client-${process.pid}-${n}.log`), o.netns);
  let answering: Awaited<ReturnType<typeof answerClient>> | undefined;
  try {
    answering = o.answers ? await answerClient(socket, o.answers) : undefined;
  } catch (err) {
    await started.stop();
    throw err;
  }
  const proc: ManagedProcess = answering
    ? extend(started, {
        stop: async () => {
          answering.close();
          await started.stop();
        },
      })
    : started;
  const fail = (what: string) => new Error(`client ${JSON.stringify(o.commonName)}: ${what}; log ${proc.logPath}:\n${proc.log().slice(-1500)}`);
  /** Waits for `expected` in the log; `opposite` there first fails at once. */
  const outcome = (expected: string, opposite: string, timeoutMs: number) =>
    waitFor(
      `${o.commonName}: ${expected}`,
      () => {
        const text = proc.log();
        if (text.includes(opposite)) throw fail(`${opposite}, expected ${expected}`);
        return text.includes(expected);
      },
      { timeoutMs, intervalMs: 100 },
    )
      .then(() => undefined)
      .catch((err: Error) => {
        throw err.message.includes('timed out') ? fail(err.message) : err;
      });
  const client: Omit<OpenVpnClient, keyof ManagedProcess> = {
    commonName: o.commonName,
    questions: answering?.questions ?? [],
    waitConnected: (timeoutMs = 60_000) => outcome('Initialization Sequence Completed', 'AUTH_FAILED', timeoutMs),
    waitAuthFailed: (timeoutMs = 60_000) => outcome('AUTH_FAILED', 'Initialization Sequence Completed', timeoutMs),
    pushReply() {
      return /PUSH: Received control message: '(PUSH_REPLY[^']*)'/.exec(proc.log())?.[1];
    },
  };
  return extend(proc, client);
}

/** Adds fields to a process handle, keeping its getters live. */
function extend<T extends object>(proc: ManagedProcess, extra: T): ManagedProcess & T {
  return Object.defineProperties({}, { ...Object.getOwnPropertyDescriptors(proc), ...Object.getOwnPropertyDescriptors(extra) }) as ManagedProcess & T;
}

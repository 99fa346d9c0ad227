/**
 * @module openvpn-management/management-client
 * A connection to one OpenVPN management interface (unix socket or loopback TCP): answers the
 * password prompt, releases a hold, queues commands and matches each reply to its command in
 * order, and reconnects with backoff when OpenVPN restarts. Notifications are emitted as
 * typed messages.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { ErrorCode } from '../errors.ts';
import { ManagementDecoder, type ManagementMessage } from './codec.ts';
import { clientAuth, clientDeny, clientKill, clientPendingAuth, parseStatus3, password, simpleCommand, type Status } from './commands.ts';
import type { EncodedCommand } from './encoder.ts';

/** The subset of a pino logger this module uses. */
interface ManagementLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ManagementClientOptions {
  /** Names the OpenVPN instance in logs. */
  readonly name: string;
  readonly path?: string;
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  readonly log: ManagementLogger;
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  readonly commandTimeoutMs?: number;
}

class ManagementCommandError extends Error {
  readonly code = ErrorCode.MANAGEMENT_REPLY;
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(`${command}: ${message}`);
    this.name = 'ManagementCommandError';
  }
}

type Reply = Extract<ManagementMessage, { type: 'success' | 'multiline' }>;

interface Pending {
  readonly command: string;
  readonly resolve: (m: Reply) => void;
  readonly reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  done: boolean;
}

/**
 * Events: `message` (ManagementMessage), `attach` (the interface is ready: banner seen,
 * password accepted), `detach` (the connection closed).
 */
export class ManagementClient extends EventEmitter {
  #socket: Socket | undefined;
  #decoder = new ManagementDecoder();
  #pending: Pending[] = [];
  #attached = false;
  #held = false;
  #closed = false;
  #backoff: number;
  #retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: ManagementClientOptions) {
    super();
    this.#backoff = options.reconnect?.minMs ?? 100;
  }

  /**
   * OpenVPN waits for `hold release` (management-hold): it has no clients yet and refuses
   * commands such as `status` until released. `release` is emitted once it is.
   */
  get held(): boolean {
    return this.#held;
  }

  get attached(): boolean {
    return this.#attached;
  }

  /** Starts connecting; keeps reconnecting until close(). */
  connect(): void {
    if (this.#closed || this.#socket) return;
    const { path, host, port } = this.options;
    const socket = path ? createConnection({ path }) : createConnection({ host: host ?? '127.0.0.1', port: port! });
    this.#socket = socket;
    this.#decoder.reset();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.options.log.debug({ instance: this.options.name, err: err.message }, 'management connection error'));
    socket.on('close', () => this.#onClose());
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const socket = this.#socket;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  /**
   * Writes a command made by the encoder (commands.ts): nothing else reaches the socket.
   * Resolves with its SUCCESS line or its lines, rejects on ERROR.
   */
  command(cmd: EncodedCommand, timeoutMs = this.options.commandTimeoutMs ?? 10_000): Promise<Reply> {
    const { name } = cmd;
    if (!this.#attached || !this.#socket) return Promise.reject(new ManagementCommandError(name, `not attached to ${this.options.name}`));
    return new Promise<Reply>((resolve, reject) => {
      const p: Pending = { command: name, resolve, reject, done: false };
      p.timer = setTimeout(() => this.#settle(p, new ManagementCommandError(name, `no reply within ${timeoutMs} ms`)), timeoutMs);
      this.#pending.push(p);
      this.#write(cmd);
    });
  }

  /** The one place bytes go to OpenVPN: the decoder learns the reply shape in write order. */
  #write(cmd: EncodedCommand): void {
    this.#decoder.expect(cmd.shape);
    this.#socket!.write(cmd.text);
  }

  /** Builds a command, turning a refusal of the encoder into a rejected promise. */
  #send(build: () => EncodedCommand): Promise<Reply> {
    let cmd: EncodedCommand;
    try {
      cmd = build();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.command(cmd);
  }

  clientAuth(cid: number, kid: number, lines: readonly string[]): Promise<Reply> {
    return this.#send(() => clientAuth(cid, kid, lines));
  }

  clientDeny(cid: number, kid: number, reason: string, clientReason?: string): Promise<Reply> {
    return this.#send(() => clientDeny(cid, kid, reason, clientReason));
  }

  clientPendingAuth(cid: number, kid: number, extra: string, timeoutSec: number): Promise<Reply> {
    return this.#send(() => clientPendingAuth(cid, kid, extra, timeoutSec));
  }

  clientKill(cid: number, message?: string): Promise<Reply> {
    return this.#send(() => clientKill(cid, message));
  }

  async status(): Promise<Status> {
    const reply = await this.command(simpleCommand('status 3'));
    return parseStatus3(reply.type === 'multiline' ? reply.lines : []);
  }

  #settle(p: Pending, outcome: Reply | Error): void {
    if (p.done) return;
    p.done = true;
    clearTimeout(p.timer);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
  }

  #onData(chunk: Buffer): void {
    for (const m of this.#decoder.push(chunk)) {
      switch (m.type) {
        case 'password-prompt':
          if (this.options.password === undefined) {
            this.options.log.error({ instance: this.options.name }, 'management interface asks for a password; set password-file');
            this.#socket?.destroy();
            return;
          }
          {
            let line: EncodedCommand;
            try {
              line = password(this.options.password);
            } catch (err) {
              this.options.log.error({ instance: this.options.name, err: (err as Error).message }, 'management password cannot be sent');
              this.#socket?.destroy();
              return;
            }
            this.#pending.push({ command: 'password', resolve: () => undefined, reject: () => undefined, done: false });
            this.#write(line);
          }
          break;
        case 'success':
        case 'error':
        case 'multiline': {
          const p = this.#pending.shift();
          if (!p) {
            this.options.log.warn({ instance: this.options.name, reply: m }, 'management reply without a command');
            break;
          }
          if (p.command === 'password' && m.type === 'error') {
            this.options.log.error({ instance: this.options.name }, 'management password refused');
          }
          this.#settle(p, m.type === 'error' ? new ManagementCommandError(p.command, m.text) : m);
          break;
        }
        case 'info':
          // the banner: the interface is ready (after the password, if any)
          if (!this.#attached) {
            this.#attached = true;
            this.#backoff = this.options.reconnect?.minMs ?? 100;
            this.options.log.info({ instance: this.options.name }, 'attached to OpenVPN management interface');
            this.emit('attach');
          }
          this.emit('message', m);
          break;
        case 'hold':
          this.#held = true;
          this.command(simpleCommand('hold release')).then(
            () => {
              this.#held = false;
              this.emit('release');
            },
            () => undefined,
          );
          this.emit('message', m);
          break;
        case 'unknown':
          this.options.log.warn({ instance: this.options.name, line: m.line.slice(0, 200) }, 'unknown management line skipped');
          break;
        default:
          this.emit('message', m);
      }
    }
  }

  #onClose(): void {
    const wasAttached = this.#attached;
    this.#attached = false;
    this.#held = false;
    this.#socket = undefined;
    for (const p of this.#pending.splice(0)) this.#settle(p, new ManagementCommandError(p.command, 'management connection closed'));
    if (wasAttached) {
      this.options.log.warn({ instance: this.options.name }, 'detached from OpenVPN management interface');
      this.emit('detach');
    }
    if (this.#closed) return;
    const delay = this.#backoff;
    // a local socket is cheap to try: keep the wait short so a restarted OpenVPN is served at once
    this.#backoff = Math.min(this.#backoff * 2, this.options.reconnect?.maxMs ?? 500);
    this.#retry = setTimeout(() => this.connect(), delay);
  }
}

/**
 * @module line-server
 * A unix socket that answers each request line with one answer, in the order the requests came
 * in. Serves the daemon's control socket and management mode's pass-through. The socket file
 * gets the configured group and mode, which decide who may connect.
 *
 * Whoever may connect must not be able to stop the daemon or exhaust it: every connection error
 * stays with that connection, a line is at most `maxLineBytes` long, at most MAX_CONNECTIONS
 * connections are served at once, and a client that does not read its answers is not read from
 * (and is dropped if it never reads).
 */
import { chmod, chown, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { groupId } from './group-id.ts';
import { LineSplitter } from './line-splitter.ts';

export interface LineSocketConfig {
  readonly socket: string;
  readonly mode: number;
  readonly group?: string;
}

export interface LineServerOptions {
  /** The longest request line, without its line ending (default MAX_LINE_BYTES). */
  readonly maxLineBytes?: number;
  /** Words an error the server itself raises as one answer line (default `ERROR: message`). */
  readonly errorLine?: (message: string) => string;
}

/**
 * An answer that takes the connection over (a stream, such as the control socket's `watch`):
 * after it, the server reads no more requests there, drops what the client sends, and leaves
 * the socket to `take`; the connection still counts against MAX_CONNECTIONS until it closes.
 */
export interface Takeover {
  readonly take: (socket: Socket) => void;
}

const MAX_LINE_BYTES = 64 * 1024;
/** Per socket; each connection holds a file descriptor, which the daemon needs for its own work. */
export const MAX_CONNECTIONS = 64;
/** Requests read ahead of their answers; past this the connection is not read until they are answered. */
const MAX_QUEUED = 64;
/** An answer the client does not take within this time ends its connection. */
const WRITE_TIMEOUT_MS = 30_000;
/** After refusing a connection, how long its input is read and dropped so the client can read the refusal. */
const LINGER_MS = 5_000;

export class LineServer {
  #server: Server | undefined;
  readonly #clients = new Set<Socket>();
  #full = false;
  readonly #maxLineBytes: number;
  readonly #errorLine: (message: string) => string;

  /** `answer` should not throw (each protocol words its own errors); if it does, the error is answered. */
  constructor(
    private readonly name: string,
    private readonly config: LineSocketConfig,
    private readonly answer: (line: string) => Promise<string | Takeover>,
    private readonly log: Logger,
    options: LineServerOptions = {},
  ) {
    this.#maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.#errorLine = options.errorLine ?? ((message) => `ERROR: ${message}\n`);
  }

  async start(): Promise<void> {
    const { socket: path, mode, group } = this.config;
    await rm(path, { force: true });
    // half-open: a client may send its requests and end its side, and still get every answer
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.on('error', (err) => this.log.error({ err: errorMessage(err) }, `${this.name} socket error`));
    this.#server = server;
    if (group !== undefined) await chown(path, -1, groupId(group));
    await chmod(path, mode);
    this.log.info({ socket: path }, `${this.name} socket listening`);
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await rm(this.config.socket, { force: true });
  }

  #serve(socket: Socket): void {
    // first, before anything can fail: an unhandled 'error' would end the daemon
    socket.on('error', (err) => this.log.debug({ err: err.message }, `${this.name} connection error`));
    if (this.#clients.size >= MAX_CONNECTIONS) {
      if (!this.#full) this.log.warn({ limit: MAX_CONNECTIONS }, `${this.name} socket: too many connections; refusing new ones`);
      this.#full = true;
      // no lingering here: a refused connection must give its descriptor back at once
      socket.end(this.#errorLine(`too many connections (at most ${MAX_CONNECTIONS} at once); try again later`), () => socket.destroy());
      return;
    }
    this.#full = false;
    this.#clients.add(socket);
    socket.on('close', () => this.#clients.delete(socket));

    const splitter = new LineSplitter(this.#maxLineBytes);
    // requests waiting for their answers; `head` avoids shifting a long array
    let queue: string[] = [];
    let head = 0;
    let failure: string | undefined;
    let ended = false;
    let working = false;
    let closing = false;

    const pump = async (): Promise<void> => {
      if (working) return;
      working = true;
      try {
        while (head < queue.length && !socket.destroyed) {
          const line = queue[head++]!;
          const answer = await Promise.resolve()
            .then(() => this.answer(line))
            .catch((err: unknown) => this.#errorLine(errorMessage(err)));
          if (socket.destroyed) return;
          if (typeof answer !== 'string') {
            socket.off('data', onData);
            socket.on('data', () => undefined);
            socket.resume();
            closing = true;
            answer.take(socket);
            return;
          }
          if (!socket.write(answer)) await this.#drained(socket);
        }
        queue = [];
        head = 0;
        if (socket.destroyed || closing) return;
        if (failure !== undefined) {
          closing = true;
          this.#endWithError(socket, failure);
        } else if (ended) {
          closing = true;
          socket.end();
        } else {
          socket.resume();
        }
      } finally {
        working = false;
      }
    };

    const onData = (chunk: Buffer) => {
      const { lines, tooLong } = splitter.push(chunk);
      for (const line of lines) queue.push(line);
      if (tooLong) {
        socket.off('data', onData);
        socket.pause();
        failure = `request line longer than ${this.#maxLineBytes} bytes; closing the connection`;
        this.log.warn({ limit: this.#maxLineBytes }, `${this.name} socket: request line too long; connection closed`);
      } else if (queue.length - head >= MAX_QUEUED) {
        socket.pause();
      }
      void pump();
    };
    socket.on('data', onData);
    socket.on('end', () => {
      ended = true;
      // a last request without its newline is still a request
      const last = failure === undefined ? splitter.finish() : undefined;
      if (last !== undefined) queue.push(last);
      if (!closing) void pump();
    });
  }

  /**
   * Sends one error line and ends the connection. Its input is read and dropped for a moment,
   * so that a client still writing sees the line and the end instead of a reset.
   */
  #endWithError(socket: Socket, message: string): void {
    socket.on('data', () => undefined);
    socket.on('end', () => socket.destroy());
    socket.resume();
    socket.end(this.#errorLine(message));
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clearTimeout(timer));
  }

  /** Resolves once the socket can take more; a client that reads nothing for too long is dropped. */
  #drained(socket: Socket): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.log.debug(`${this.name} socket: client reads no answers; connection closed`);
        socket.destroy();
      }, WRITE_TIMEOUT_MS);
      socket.once('drain', done);
      socket.once('close', done);
    });
  }
}

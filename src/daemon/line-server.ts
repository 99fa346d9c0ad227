/**
 * @module line-server
 * A unix socket that answers each request line with one answer, in the order the requests came
 * in. Serves the daemon's control socket and management mode's pass-through. The socket file
 * gets the configured group and mode, which decide who may connect.
 */
import { chmod, chown, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.ts';
import { groupId } from '../sources/hook/runtime-dir.ts';

export interface LineSocketConfig {
  readonly socket: string;
  readonly mode: number;
  readonly group?: string;
}

export class LineServer {
  #server: Server | undefined;
  readonly #clients = new Set<Socket>();

  /** `answer` must not throw: each protocol words its own errors. */
  constructor(
    private readonly name: string,
    private readonly config: LineSocketConfig,
    private readonly answer: (line: string) => Promise<string>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { socket: path, mode, group } = this.config;
    await rm(path, { force: true });
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
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
    this.#clients.add(socket);
    socket.on('close', () => this.#clients.delete(socket));
    socket.on('error', () => undefined);
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    let chain = Promise.resolve();
    lines.on('line', (line) => {
      chain = chain.then(async () => {
        const answer = await this.answer(line);
        if (!socket.destroyed) socket.write(answer);
      });
    });
  }
}

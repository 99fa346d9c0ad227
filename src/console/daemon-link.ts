/**
 * @module daemon-link
 * The console's way to the running daemon: its control socket (src/daemon/control-socket.ts),
 * one JSON request line and one JSON answer line per connection, and the `watch` feed.
 * Behind an interface, so the console's tests can stand in for the daemon.
 */
import { createConnection } from 'node:net';
import type { ControlHealthResponse, ControlKillResponse, ControlResponse, ControlSession } from '../daemon/control-socket.ts';
import { openWatch, type WatchConnection } from '../observe/watch-client.ts';
import type { WatchLine } from '../observe/watch-feed.ts';
import { LineSplitter } from '../util/line-splitter.ts';

export type { ControlSession };
export type Health = Extract<ControlHealthResponse, { ok: true }>;

export interface DaemonLink {
  status(): Promise<readonly ControlSession[]>;
  health(): Promise<Health>;
  kill(id: string, reason: string, by: string): Promise<void>;
  watch(onLine: (line: WatchLine) => void): Promise<WatchConnection>;
}

/** An answer is one line; a status of thousands of clients is a few MB at most. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

function ask<T>(socketPath: string, message: object, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    const splitter = new LineSplitter(MAX_ANSWER_BYTES);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no answer from the daemon at ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(message)}\n`));
    socket.on('error', (err) => fail(new Error(`cannot reach the daemon at ${socketPath}: ${err.message}`)));
    socket.on('close', () => fail(new Error(`the daemon at ${socketPath} closed the connection without answering`)));
    socket.on('data', (chunk: Buffer) => {
      const { lines, tooLong } = splitter.push(chunk);
      if (tooLong) return fail(new Error(`the daemon's answer is longer than ${MAX_ANSWER_BYTES} bytes`));
      const [first] = lines;
      if (first === undefined) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.end();
      try {
        resolve(JSON.parse(first) as T);
      } catch {
        reject(new Error(`${socketPath} answered something that is not JSON; is it the daemon's control socket?`));
      }
    });
  });
}

const refused = (what: string, answer: { ok: boolean; error?: string }): Error => new Error(`the daemon refused ${what}: ${answer.error ?? 'no reason given'}`);

/** The daemon behind its control socket. */
export function controlSocketLink(socketPath: string, timeoutMs = 10_000): DaemonLink {
  return {
    async status() {
      const a = await ask<ControlResponse>(socketPath, { command: 'status' }, timeoutMs);
      if (!a.ok) throw refused('status', a);
      return a.sessions;
    },
    async health() {
      const a = await ask<ControlHealthResponse>(socketPath, { command: 'health' }, timeoutMs);
      if (!a.ok) throw refused('health', a);
      return a;
    },
    async kill(id, reason, by) {
      const a = await ask<ControlKillResponse>(socketPath, { command: 'kill', id, reason, by }, timeoutMs);
      if (!a.ok) throw refused('the disconnect', a);
    },
    watch: (onLine) => openWatch(socketPath, onLine, timeoutMs),
  };
}

/**
 * @module watch-client
 * The client side of the control socket's `watch`: connects, asks to watch, and hands each
 * line of the feed, parsed, to `onLine`. Used by `flexscript watch` and the lab.
 *
 * @example
 * const watch = await openWatch('/run/flexscript/control.sock', (l) => l.channel === 'decision' && show(l.data));
 * await watch.closed;
 */
import { createConnection, type Socket } from 'node:net';
import { LineSplitter } from '../util/line-splitter.ts';
import type { WatchLine } from './watch-feed.ts';

export interface WatchConnection {
  /** Resolves when the connection has ended (the daemon stopped, or `close` was called). */
  readonly closed: Promise<void>;
  close(): void;
}

/** Longest feed line taken; a longer one ends the watch. */
const MAX_LINE_BYTES = 1024 * 1024;

/** Connects and asks to watch; resolves once the daemon said yes, rejects if it refused or cannot be reached. */
export function openWatch(socketPath: string, onLine: (line: WatchLine) => void, timeoutMs = 10_000): Promise<WatchConnection> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({ path: socketPath });
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    let acked = false;
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (!acked) reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write('{"command":"watch"}\n'));
    socket.on('error', (err) => fail(new Error(`cannot reach the daemon at ${socketPath}: ${err.message}`)));
    socket.on('close', () => fail(new Error(`${socketPath} closed the connection before answering`)));
    socket.on('data', (chunk: Buffer) => {
      const { lines, tooLong } = splitter.push(chunk);
      for (const text of lines) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return fail(new Error(`${socketPath} sent something that is not JSON; is it the daemon's control socket?`));
        }
        if (!acked) {
          const ack = parsed as { ok?: boolean; error?: string };
          if (ack.ok !== true) return fail(new Error(`the daemon refused watch: ${String(ack.error ?? 'no reason given')}`));
          acked = true;
          clearTimeout(timer);
          resolve({ closed, close: () => socket.destroy() });
          continue;
        }
        onLine(parsed as WatchLine);
      }
      if (tooLong) fail(new Error(`a line from ${socketPath} is longer than ${MAX_LINE_BYTES} bytes`));
    });
  });
}

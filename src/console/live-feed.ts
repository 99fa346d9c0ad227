/**
 * @module live-feed
 * One watch of the daemon's feed for the whole console, shared by every open page: opened when
 * the first page subscribes, closed when the last leaves, opened again (after a pause) when the
 * daemon restarts. Pages get the lines that change who is connected, and lifecycle steps.
 */
import type { Logger } from '../logger.ts';
import type { WatchConnection } from '../observe/watch-client.ts';
import type { WatchLine } from '../observe/watch-feed.ts';
import type { DaemonLink } from './daemon-link.ts';

/** What a page hears: a change in the live clients, or the daemon's state. */
export interface LiveEvent {
  readonly kind: 'client' | 'daemon';
  readonly line: WatchLine;
}

const RETRY_MS = 2000;
const CLIENT_EVENTS = new Set(['client-connect', 'client-disconnect', 'learn-address', 'event.missed']);

function liveEventOf(line: WatchLine): LiveEvent | undefined {
  if (line.channel === 'decision' && CLIENT_EVENTS.has(line.data.event)) return { kind: 'client', line };
  if (line.channel === 'lifecycle') return { kind: line.data.what.startsWith('session') ? 'client' : 'daemon', line };
  return undefined;
}

export class LiveFeed {
  readonly #subscribers = new Set<(e: LiveEvent) => void>();
  #connection: WatchConnection | undefined;
  #opening = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly daemon: DaemonLink,
    private readonly log: Logger,
  ) {}

  /** Adds a subscriber; returns what removes it. */
  subscribe(fn: (e: LiveEvent) => void): () => void {
    this.#subscribers.add(fn);
    this.#open();
    return () => {
      this.#subscribers.delete(fn);
      if (this.#subscribers.size === 0) this.close();
    };
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  #open(): void {
    if (this.#connection || this.#opening || this.#retry) return;
    this.#opening = true;
    this.daemon
      .watch((line) => {
        const event = liveEventOf(line);
        if (event) for (const fn of this.#subscribers) fn(event);
      })
      .then((connection) => {
        this.#opening = false;
        if (this.#subscribers.size === 0) return connection.close();
        this.#connection = connection;
        void connection.closed.then(() => {
          if (this.#connection !== connection) return;
          this.#connection = undefined;
          this.#later();
        });
      })
      .catch((err: unknown) => {
        this.#opening = false;
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot watch the daemon; trying again');
        this.#later();
      });
  }

  #later(): void {
    if (this.#subscribers.size === 0 || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#open();
    }, RETRY_MS);
    this.#retry.unref();
  }

  close(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const c = this.#connection;
    this.#connection = undefined;
    c?.close();
  }
}

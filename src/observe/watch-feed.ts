/**
 * @module watch-feed
 * The channels' messages as JSON lines for watchers (`flexscript watch`, the lab): one line per
 * finished message, `{"channel":"decision","time":"…","data":{…}}`. Client text (common names,
 * usernames, reasons) stays data inside JSON strings.
 *
 * A watcher never slows the daemon: lines are written without waiting, and a watcher whose
 * unread output passes MAX_BUFFERED_BYTES is dropped. While nobody watches, the feed is not
 * subscribed and the channels cost nothing, except for a short while after start: messages are
 * kept (at most BACKLOG_LINES, for BACKLOG_MS) for the first watcher, so a watcher that connects
 * right after the daemon started misses nothing.
 */
import type { Logger } from '../logger.ts';
import { observeAll, type ObservedMessage } from './channels.ts';

/** One line of the feed, as a watcher parses it. */
export type WatchLine = ObservedMessage & { readonly time: string };

/** Where a watcher's lines go: a socket, in the daemon. */
export interface WatchSink {
  write(line: string): unknown;
  /** Bytes written and not yet taken by the watcher. */
  readonly writableLength: number;
  readonly destroyed: boolean;
  end(): unknown;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface WatchFeedOptions {
  readonly maxBufferedBytes?: number;
  readonly backlogMs?: number;
  readonly backlogLines?: number;
}

/** A watcher further behind than this is dropped. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
const BACKLOG_MS = 60_000;
const BACKLOG_LINES = 10_000;

export class WatchFeed {
  readonly #watchers = new Set<WatchSink>();
  readonly #maxBuffered: number;
  readonly #backlogLines: number;
  /** Lines since start, for the first watcher; undefined once taken or expired. */
  #backlog: string[] | undefined = [];
  readonly #backlogTimer: NodeJS.Timeout;
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly log: Logger,
    options: WatchFeedOptions = {},
  ) {
    this.#maxBuffered = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
    this.#backlogLines = options.backlogLines ?? BACKLOG_LINES;
    this.#subscribe();
    this.#backlogTimer = setTimeout(() => this.#dropBacklog(), options.backlogMs ?? BACKLOG_MS).unref();
  }

  /** Watchers connected now. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /** Starts sending lines to `sink` (the backlog first, if still kept); ends when it closes. */
  add(sink: WatchSink): void {
    const backlog = this.#backlog;
    this.#watchers.add(sink);
    sink.once('close', () => this.#remove(sink));
    this.#subscribe();
    this.#dropBacklog();
    for (const line of backlog ?? []) this.#send(sink, line);
  }

  /** Ends every watcher's connection after what was written to it (at most `graceMs`), e.g. as the daemon stops. */
  async endWatchers(graceMs = 1000): Promise<void> {
    const sinks = [...this.#watchers];
    const closed = sinks.map((sink) => new Promise<void>((resolve) => (sink.destroyed ? resolve() : sink.once('close', resolve))));
    for (const sink of sinks) sink.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const sink of sinks) sink.destroy();
  }

  close(): void {
    this.#dropBacklog();
    for (const sink of this.#watchers) sink.destroy();
    this.#watchers.clear();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #subscribe(): void {
    this.#unsubscribe ??= observeAll((message) => this.#publish(`${JSON.stringify({ ...message, time: new Date().toISOString() })}\n`));
  }

  #publish(line: string): void {
    if (this.#backlog && this.#backlog.length < this.#backlogLines) this.#backlog.push(line);
    for (const sink of this.#watchers) this.#send(sink, line);
  }

  #send(sink: WatchSink, line: string): void {
    if (sink.destroyed) {
      this.#remove(sink);
    } else if (sink.writableLength > this.#maxBuffered) {
      // never waits for a slow reader: one too far behind is dropped instead
      this.log.warn({ unread: sink.writableLength, limit: this.#maxBuffered }, 'watcher reads too slowly; dropped');
      sink.destroy();
      this.#remove(sink);
    } else {
      sink.write(line);
    }
  }

  #remove(sink: WatchSink): void {
    this.#watchers.delete(sink);
    this.#idle();
  }

  #dropBacklog(): void {
    clearTimeout(this.#backlogTimer);
    this.#backlog = undefined;
    this.#idle();
  }

  /** Nobody watches and nothing is kept: the channels go back to costing nothing. */
  #idle(): void {
    if (this.#watchers.size > 0 || this.#backlog) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

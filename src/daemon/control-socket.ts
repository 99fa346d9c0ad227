/**
 * @module control-socket
 * The daemon's own control socket, in both modes (hook mode has no management interface to ask,
 * and management mode's pass-through speaks OpenVPN's protocol). One JSON object per line in,
 * one JSON line out. Every command but `kill` only reads; `kill` is refused unless the config
 * says `control.allow-kill: true` (the operator console uses it).
 *
 * - `status`: the live clients.
 * - `health`: the instances and whether the daemon is attached to each, the root stage, the
 *   store, the event queue.
 * - `watch`: an answer line, then the daemon's channel messages as JSON lines for as long as the
 *   connection lasts (src/observe/watch-feed.ts; a watcher that reads too slowly is dropped).
 * - `kill`: disconnects one live session by its id (management mode only: OpenVPN gives hooks
 *   no command channel); its record ends as `killed`.
 *
 * @example
 * → {"command":"status"}
 * ← {"ok":true,"sessions":[{"instance":"office","commonName":"alice","vpnAddress":"10.8.0.6",...}]}
 * → {"command":"watch"}
 * ← {"ok":true,"watching":["decision","plugin-call","root-action","lifecycle"]}
 * ← {"channel":"decision","data":{"event":"client-connect","commonName":"alice","verdict":"accept",...},"time":"..."}
 * → {"command":"kill","id":"3f0c...","reason":"lost laptop","by":"carol"}
 * ← {"ok":true,"killed":1}
 */
import { keyString, type Client, type ClientInfo, type ConnectionKey } from '../core/client.ts';
import type { SourceAdapter } from '../events/source.ts';
import { errorMessage } from '../errors.ts';
import type { ControlConfig } from '../config/config-schema.ts';
import type { Logger } from '../logger.ts';
import type { WatchFeed } from '../observe/watch-feed.ts';
import { LineServer, type Takeover } from '../util/line-server.ts';

/** One live client as `status` reports it. */
export interface ControlSession extends ClientInfo {
  /** The daemon's session id (also its record's id in the store); absent in rows read from OpenVPN directly. */
  readonly id?: string;
  /** Which source serves it: only `management` sessions can be disconnected. */
  readonly via?: ConnectionKey['via'];
  /** ISO time of the connect. */
  readonly since: string;
  /** From OpenVPN's status (management `status 3`, or hook mode's status file); absent when unknown. */
  readonly bytesReceived?: number;
  readonly bytesSent?: number;
  /** The client's groups, when it is in any. */
  readonly groups?: readonly string[];
}

/** The root stage as `status` reports it: without the table in place the firewall admits nobody. */
interface ControlRootStatus {
  readonly state: string;
  readonly tableReady: boolean;
  /** Why it is not serving, while it is not. */
  readonly problem?: string;
}

/** What `health` answers. */
interface ControlHealth {
  readonly ok: true;
  /** ISO time the daemon started. */
  readonly startedAt: string;
  /** Every instance the daemon serves: management ones say whether the daemon is attached. */
  readonly instances: readonly { readonly name: string; readonly via: ConnectionKey['via']; readonly attached?: boolean }[];
  readonly sessions: number;
  readonly root?: ControlRootStatus;
  readonly store?: { readonly kind: string };
  /** Events waiting for a pipeline slot, and how many run at once. */
  readonly queue: { readonly queued: number; readonly concurrency: number };
  /** Whether `kill` is allowed here. */
  readonly killAllowed: boolean;
}

type ControlRefusal = { readonly ok: false; readonly error: string };

/** What `status` answers. */
export type ControlResponse = { readonly ok: true; readonly sessions: readonly ControlSession[]; readonly root?: ControlRootStatus } | ControlRefusal;

/** What `health` and `kill` answer. */
export type ControlHealthResponse = ControlHealth | ControlRefusal;
export type ControlKillResponse = { readonly ok: true; readonly killed: number } | ControlRefusal;

type Answer = ControlResponse | ControlHealthResponse | ControlKillResponse;

/** The first line of a `watch` answer; the feed's lines follow. */
type ControlWatchResponse = { readonly ok: true; readonly watching: readonly string[] } | { readonly ok: false; readonly error: string };

/** The channels a watcher gets. */
const WATCHED = ['decision', 'plugin-call', 'root-action', 'lifecycle'] as const;

export interface ControlSources {
  readonly sessions: () => readonly (Client & { readonly id: string })[];
  /** The event sources: their lists of live clients (management `status 3`, hook mode's status file) give byte counts. */
  readonly sources: () => readonly SourceAdapter[];
  /** The root stage, when the config has one. */
  readonly root?: () => ControlRootStatus;
  /** The channel feed for `watch`. */
  readonly watch?: WatchFeed;
  /** What `health` reports beyond the sessions and the root stage. */
  readonly health?: () => Omit<ControlHealth, 'ok' | 'sessions' | 'root' | 'killAllowed'>;
  /** Disconnects a live session on purpose (its record ends as `killed`); throws where its source cannot. */
  readonly kill?: (session: Client & { readonly id: string }, reason: string) => Promise<void>;
}

/** The longest reason `kill` takes (it goes to the log, never to OpenVPN). */
const MAX_KILL_REASON = 500;

/** A request is one short JSON object; the line server refuses longer lines. */
const MAX_LINE = 4096;

type Bytes = { readonly received: number; readonly sent: number };

/** Byte counts by connection (keyString), from whatever OpenVPN offers; a source that fails is skipped. */
async function bytesByKey(sources: ControlSources, log: Logger): Promise<Map<string, Bytes>> {
  const bytes = new Map<string, Bytes>();
  for (const source of sources.sources()) {
    if (!source.liveClients) continue;
    try {
      for (const c of await source.liveClients()) bytes.set(keyString(c.key), { received: c.bytesReceived, sent: c.bytesSent });
    } catch (err) {
      log.debug({ err: errorMessage(err) }, 'no byte counts from a source');
    }
  }
  return bytes;
}

async function statusOf(sources: ControlSources, log: Logger): Promise<ControlSession[]> {
  const live = sources.sessions();
  const bytes = live.length > 0 ? await bytesByKey(sources, log) : new Map<string, Bytes>();
  return live.map((s) => {
    const b = bytes.get(keyString(s.key));
    return {
      id: s.id,
      via: s.key.via,
      instance: s.instance,
      commonName: s.commonName,
      username: s.username,
      vpnAddress: s.vpnAddress,
      vpnAddress6: s.vpnAddress6,
      realAddress: s.realAddress,
      realPort: s.realPort,
      since: new Date(s.connectedAt).toISOString(),
      bytesReceived: b?.received,
      bytesSent: b?.sent,
      groups: s.groups.length > 0 ? s.groups : undefined,
    };
  });
}

export class ControlServer {
  readonly #lines: LineServer;

  constructor(
    private readonly config: ControlConfig,
    private readonly sources: ControlSources,
    private readonly log: Logger,
  ) {
    const line = (response: Answer) => `${JSON.stringify(response)}\n`;
    const answer = async (request: string) => {
      const response = await this.#answer(request).catch((err: unknown): Answer => ({ ok: false, error: errorMessage(err) }));
      return 'take' in response ? response : line(response);
    };
    this.#lines = new LineServer('control', config, answer, log, { maxLineBytes: MAX_LINE, errorLine: (error) => line({ ok: false, error }) });
  }

  start(): Promise<void> {
    return this.#lines.start();
  }

  async close(): Promise<void> {
    // watchers get what was sent before the end, such as the daemon stopping
    await this.sources.watch?.endWatchers();
    await this.#lines.close();
  }

  async #answer(line: string): Promise<Answer | Takeover> {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      return { ok: false, error: 'expected one JSON object per line, e.g. {"command":"status"}' };
    }
    const command = typeof request === 'object' && request !== null ? (request as { command?: unknown }).command : undefined;
    if (command === 'status') {
      const root = this.sources.root?.();
      return {
        ok: true,
        sessions: await statusOf(this.sources, this.log),
        ...(root ? { root: { state: root.state, tableReady: root.tableReady, ...(root.problem ? { problem: root.problem } : {}) } } : {}),
      };
    }
    if (command === 'health') return this.#health();
    if (command === 'watch') return this.#watch();
    if (command === 'kill') return this.#kill(request as { id?: unknown; reason?: unknown; by?: unknown });
    return { ok: false, error: `unknown command ${JSON.stringify(String(command ?? '')).slice(0, 80)}; known: status, health, watch, kill` };
  }

  #health(): ControlHealthResponse {
    const root = this.sources.root?.();
    const more = this.sources.health?.() ?? { startedAt: new Date(0).toISOString(), instances: [], queue: { queued: 0, concurrency: 0 } };
    return {
      ok: true,
      ...more,
      sessions: this.sources.sessions().length,
      ...(root ? { root: { state: root.state, tableReady: root.tableReady, ...(root.problem ? { problem: root.problem } : {}) } } : {}),
      killAllowed: this.config['allow-kill'] && this.sources.kill !== undefined,
    };
  }

  async #kill(request: { id?: unknown; reason?: unknown; by?: unknown }): Promise<ControlKillResponse> {
    if (!this.config['allow-kill'] || !this.sources.kill) return { ok: false, error: 'disconnecting clients is not allowed here (control.allow-kill)' };
    const { id, reason, by } = request;
    if (typeof id !== 'string' || typeof reason !== 'string' || reason.trim() === '' || reason.length > MAX_KILL_REASON)
      return { ok: false, error: `kill needs a session id and a reason (1..${MAX_KILL_REASON} characters)` };
    const session = this.sources.sessions().find((s) => s.id === id);
    if (!session) return { ok: false, error: 'no live session with this id' };
    this.log.info(
      { instance: session.instance, commonName: session.commonName, session: id, reason, by: typeof by === 'string' ? by.slice(0, 256) : undefined },
      'disconnecting a client on request of the control socket',
    );
    await this.sources.kill(session, reason);
    return { ok: true, killed: 1 };
  }

  #watch(): ControlResponse | Takeover {
    const feed = this.sources.watch;
    if (!feed) return { ok: false, error: 'watch is not available in this daemon' };
    return {
      take: (socket) => {
        const ack: ControlWatchResponse = { ok: true, watching: WATCHED };
        socket.write(`${JSON.stringify(ack)}\n`);
        // a watcher that ends its side is done watching
        socket.once('end', () => socket.end());
        this.log.info({ watchers: feed.watchers + 1 }, 'watcher connected');
        feed.add(socket);
      },
    };
  }
}

/**
 * @module metrics-server
 * Serves the Prometheus text at `GET /metrics`, on loopback TCP or on a unix socket (with the
 * configured group and mode, like the daemon's other sockets). Metrics tell who is connected
 * and how busy the server is, so they are never served beyond the machine: the config refuses
 * non-loopback addresses, and a scraper elsewhere goes through a local proxy or exporter.
 */
import { chmod, chown, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.ts';
import type { MetricsConfig } from '../config/config-schema.ts';
import type { Logger } from '../logger.ts';
import { groupId } from '../util/group-id.ts';
import type { DaemonMetrics } from './daemon-metrics.ts';

export class MetricsServer {
  #server: Server | undefined;

  constructor(
    private readonly config: MetricsConfig,
    private readonly metrics: DaemonMetrics,
    private readonly log: Logger,
  ) {}

  /** Where it listens: `host:port` or the socket path. */
  get address(): string {
    const a = this.#server?.address();
    if (!a || typeof a === 'string') return this.config.socket ?? '';
    const { address, port } = a as AddressInfo;
    return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
        return;
      }
      this.metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (err: unknown) => {
          this.log.error({ err: errorMessage(err) }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
        },
      );
    });
    // a scraper that holds connections open must not keep the daemon from stopping
    server.keepAliveTimeout = 5000;
    const { socket, host, port } = this.config;
    if (socket) await rm(socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (socket) server.listen(socket, () => resolve());
      else server.listen(port, host === 'localhost' ? '127.0.0.1' : host, () => resolve());
    });
    this.#server = server;
    if (socket) {
      if (this.config.group !== undefined) await chown(socket, -1, groupId(this.config.group));
      await chmod(socket, this.config.mode);
    }
    this.log.info({ listen: this.address }, 'metrics served at /metrics');
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    if (this.config.socket) await rm(this.config.socket, { force: true });
  }
}

/** What the gauges read from the running daemon. */
export interface MetricsTargets {
  readonly dispatcher: {
    readonly queued: number;
    readonly sessions: { list(): readonly { readonly instance: string }[] };
    /** The running plugins (a reload replaces them). */
    readonly pipeline: { readonly plugins: readonly { readonly name: string; readonly instance: { counters?(): Readonly<Record<string, number>> } }[] };
  };
  readonly root?: { readonly stats: { readonly starts: number; readonly state: string } };
  readonly store?: { stats(): { readonly roundTrips: number } };
  readonly management: ReadonlyMap<string, { readonly client: { readonly attached: boolean } }>;
  /** Every instance the daemon serves (hook mode's and the management ones). */
  readonly instances: readonly string[];
}

/** Binds the gauges to the daemon and starts serving; the returned server is closed with the daemon. */
export async function serveMetrics(config: MetricsConfig, metrics: DaemonMetrics, targets: MetricsTargets, log: Logger): Promise<MetricsServer> {
  metrics.bind({
    queued: () => targets.dispatcher.queued,
    sessions: () => targets.dispatcher.sessions.list(),
    instances: () => targets.instances,
    root: targets.root && (() => targets.root!.stats),
    store: targets.store && (() => targets.store!.stats()),
    management: () => [...targets.management].map(([instance, m]) => ({ instance, attached: m.client.attached })),
    pluginCounters: () =>
      targets.dispatcher.pipeline.plugins.flatMap((p) => {
        const counters = p.instance.counters?.();
        return counters ? [{ plugin: p.name, counters }] : [];
      }),
  });
  const server = new MetricsServer(config, metrics, log);
  await server.start();
  return server;
}

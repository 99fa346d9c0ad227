/**
 * @module daemon
 * flexscriptd: one long-lived process that reads the config and plugins once, serves every
 * event source, reloads on SIGHUP (keeping the old config and plugins if the new ones are
 * invalid) and shuts down in the reverse order of start-up on SIGTERM.
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import type { Config } from '../config/config-schema.ts';
import { loadConfig, type LoadedConfig } from '../config/load-config.ts';
import { createLogger, type Logger } from '../logger.ts';
import { closePlugins, loadPlugins, type LoadedPlugin } from '../plugins/load-plugins.ts';
import type { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import { publishLifecycle } from '../observe/channels.ts';
import type { WatchFeed } from '../observe/watch-feed.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { HookServer } from '../sources/hook/hook-server.ts';
import type { ManagementSource } from '../sources/management/management-source.ts';
import type { Client, ConnectionKey } from '../core/client.ts';
import type { SourceAdapter } from '../events/source.ts';
import { Dispatcher } from './dispatcher.ts';
import { startHeapTrim } from './heap-trim.ts';
import { DaemonServices } from './services.ts';

/** What a client disconnected through the control socket is told: HALT, so it does not reconnect at once. */
const CONTROL_KILL_MESSAGE = 'HALT,disconnected by the server operator';

interface DaemonOptions {
  readonly log?: Logger;
}

/** What watches the daemon from its channels: metrics and the control socket's watchers. */
interface Observers {
  readonly metrics?: DaemonMetrics;
  readonly watch?: WatchFeed;
  close(): Promise<void>;
}

/** The gates a source opens once it has rebuilt its sessions after a restart. */
interface RebuildGates {
  readonly hook: (() => void) | undefined;
  readonly management: Map<string, () => void>;
}

/** Subscribes metrics and the control socket's watch feed to the channels, as far as the config asks for them. */
async function openObservers(config: Config, log: Logger): Promise<Observers> {
  const metrics = config.metrics ? new (await import('../metrics/daemon-metrics.ts')).DaemonMetrics() : undefined;
  const unsubscribeMetrics = metrics?.subscribe();
  const watch = config.control ? new (await import('../observe/watch-feed.ts')).WatchFeed(log.child({ source: 'watch' })) : undefined;
  return {
    metrics,
    watch,
    close: async () => {
      unsubscribeMetrics?.();
      watch?.close();
    },
  };
}

/** The services plugins use, then the plugins; on failure closes what was opened, observers included. */
async function openServicesAndPlugins(loaded: LoadedConfig, log: Logger, observers: Observers): Promise<{ services: DaemonServices; plugins: LoadedPlugin[] }> {
  let services: DaemonServices;
  try {
    services = await DaemonServices.open(loaded.config, log);
  } catch (err) {
    await observers.close();
    throw err;
  }
  try {
    return { services, plugins: await loadPlugins(loaded, log, services) };
  } catch (err) {
    await services.close();
    await observers.close();
    throw err;
  }
}

class Daemon {
  #closing: Promise<void> | undefined;
  /** Management sources by instance name (for status and kill). */
  readonly management = new Map<string, ManagementSource>();
  #reloading: Promise<boolean> | undefined;

  private constructor(
    private loaded: LoadedConfig,
    private plugins: LoadedPlugin[],
    readonly log: Logger,
    readonly dispatcher: Dispatcher,
    /** What start-up opened, closed in reverse order: event sources, then the sockets that serve tools. */
    private readonly opened: { close(): Promise<void> }[],
    readonly services: DaemonServices,
  ) {}

  get config(): LoadedConfig {
    return this.loaded;
  }

  static async start(configPath: string, options: DaemonOptions = {}): Promise<Daemon> {
    const loaded = await loadConfig(configPath);
    const log = options.log ?? createLogger(loaded.config.log.level, undefined, loaded.config.log.format);
    // metrics and watchers subscribe to the channels before the first event can flow
    const observers = await openObservers(loaded.config, log);
    const { services, plugins } = await openServicesAndPlugins(loaded, log, observers);
    const identity = { usernamesVerifiedByOpenvpn: loaded.config.identity['usernames-verified-by-openvpn'], groups: loaded.config.groups };
    const dispatcher = new Dispatcher(new Pipeline(plugins, log), log, loaded.config.pipeline.concurrency, identity);
    // a session rebuilt after a restart takes back what its open record holds
    const { store } = services;
    if (store) dispatcher.recall = (instance) => store.openSessions(instance);
    dispatcher.groupsChanged = (session, before) => services.groupsChanged(session, before);
    // the observers are closed last: watchers see the daemon stop
    const daemon = new Daemon(loaded, plugins, log, dispatcher, [observers], services);
    // registered before the root stage starts: its first reconcile waits for them
    const rebuilt: RebuildGates = {
      hook: loaded.config.hook?.['status-file'] ? services.rebuildGate('hook') : undefined,
      management: new Map((loaded.config.management?.instances ?? []).map((i) => [i.name, services.rebuildGate(`management/${i.name}`)])),
    };
    services.attach(
      dispatcher.sessions,
      () => daemon.plugins,
      (session, reason) => daemon.kill(session, reason),
    );
    try {
      const sources = await daemon.#startSources(rebuilt);
      await daemon.#serveTools(sources, observers);
    } catch (err) {
      await daemon.close();
      throw err;
    }
    log.info({ config: loaded.file, instance: loaded.config.instance, plugins: plugins.map((p) => p.name) }, 'flexscript daemon started');
    publishLifecycle(() => ({ what: 'started', instance: loaded.config.instance, plugins: plugins.map((p) => p.name) }));
    return daemon;
  }

  /** Starts the event sources: the hook server, then one management source per instance. */
  async #startSources(rebuilt: RebuildGates): Promise<SourceAdapter[]> {
    const { config } = this.loaded;
    const { dispatcher, log, services, opened } = this;
    const sources: SourceAdapter[] = [];
    const { hook } = config;
    if (hook) {
      const hookRebuilt = rebuilt.hook;
      const server = new HookServer({
        config: hook,
        instance: config.instance,
        sink: dispatcher,
        log: log.child({ source: 'hook' }),
        onRebuilt:
          hookRebuilt &&
          ((asOf) => {
            hookRebuilt();
            void services.rebuilt(config.instance, asOf);
          }),
      });
      await server.start();
      opened.push(server);
      sources.push(server);
    }
    const { management } = config;
    // loaded only when used, like every source
    const { ManagementSource } = management ? await import('../sources/management/management-source.ts') : { ManagementSource: undefined };
    for (const instance of management?.instances ?? []) {
      const instanceRebuilt = rebuilt.management.get(instance.name)!;
      const source = await ManagementSource!.start({
        config: instance,
        sink: dispatcher,
        log: log.child({ source: 'management', instance: instance.name }),
        commandTimeoutMs: management!['command-timeout'],
        fastPush: management!['fast-push'],
        onRebuilt: () => {
          instanceRebuilt();
          void services.rebuilt(instance.name);
        },
      });
      opened.push(source);
      sources.push(source);
      this.management.set(instance.name, source);
    }
    return sources;
  }

  /** Starts the sockets that serve tools: management pass-through, control, metrics. */
  async #serveTools(sources: readonly SourceAdapter[], observers: Observers): Promise<void> {
    const { config } = this.loaded;
    const { dispatcher, log, services, opened } = this;
    const passThrough = config.management?.['pass-through'];
    if (passThrough) {
      const { PassThroughServer } = await import('../sources/management/pass-through.ts');
      // the record of a client killed through it ends as killed, as one killed from the console
      const recordKill = async (instance: string, cid: number, killed: boolean) => {
        const session = dispatcher.sessions.get({ via: 'management', instance, cid });
        if (session) await services.records?.markKilled(session.id, killed);
      };
      const server = new PassThroughServer(passThrough, this.management, dispatcher, log.child({ source: 'pass-through' }), recordKill);
      await server.start();
      opened.push(server);
    }
    if (config.control) {
      const { ControlServer } = await import('./control-socket.ts');
      const rootClient = services.root;
      const startedAt = new Date().toISOString();
      const control = {
        sessions: () => dispatcher.sessions.list(),
        sources: () => sources,
        root: rootClient && (() => rootClient.stats),
        watch: observers.watch,
        health: () => ({
          startedAt,
          instances: [
            ...(config.hook ? [{ name: config.instance, via: 'hook' as const }] : []),
            ...[...this.management].map(([name, m]) => ({ name, via: 'management' as const, attached: m.client.attached })),
          ],
          ...(config.store ? { store: { kind: config.store.postgres ? 'postgres' : 'sqlite' } } : {}),
          queue: { queued: dispatcher.queued, concurrency: config.pipeline.concurrency },
        }),
        kill: async (session: Client & { readonly id: string }, reason: string) => {
          // the record ends as killed; a kill that fails leaves it as it was
          await services.records?.markKilled(session.id);
          await this.kill(session, CONTROL_KILL_MESSAGE).catch(async (err: unknown) => {
            await services.records?.markKilled(session.id, false);
            throw err;
          });
          this.log.info({ instance: session.instance, commonName: session.commonName, session: session.id, reason }, 'client disconnected');
        },
      };
      const server = new ControlServer(config.control, control, log.child({ source: 'control' }));
      await server.start();
      opened.push(server);
    }
    if (observers.metrics) {
      const { serveMetrics } = await import('../metrics/metrics-server.ts');
      const instances = [...(config.hook ? [config.instance] : []), ...this.management.keys()];
      const targets = { dispatcher, root: services.root, store: services.store, management: this.management, instances };
      opened.push(await serveMetrics(config.metrics!, observers.metrics, targets, log.child({ source: 'metrics' })));
    }
  }

  /** Loads the config and plugins again; on any problem keeps the running ones and returns false. */
  reload(): Promise<boolean> {
    this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  async #reload(): Promise<boolean> {
    const { log } = this;
    let next: LoadedConfig;
    let plugins: LoadedPlugin[];
    try {
      next = await loadConfig(this.loaded.file);
      plugins = await loadPlugins(next, log, this.services);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [errorMessage(err)];
      log.error({ problems }, 'reload refused; keeping the running config and plugins');
      publishLifecycle(() => ({ what: 'reload-failed', problems }));
      return false;
    }
    const { hook, management, instance } = this.loaded.config;
    const { root, store } = this.loaded.config;
    if (
      !isDeepStrictEqual(next.config.hook, hook) ||
      !isDeepStrictEqual(next.config.management, management) ||
      next.config.instance !== instance ||
      !isDeepStrictEqual(next.config.root, root) ||
      !isDeepStrictEqual(next.config.store, store) ||
      !isDeepStrictEqual(next.config.metrics, this.loaded.config.metrics) ||
      !isDeepStrictEqual(next.config.control, this.loaded.config.control)
    ) {
      log.warn('changes to hook:, management:, root:, store:, metrics:, control: and instance: take effect at the next restart');
    }
    const old = this.plugins;
    this.plugins = plugins;
    this.loaded = next;
    log.level = next.config.log.level;
    this.dispatcher.identity = { usernamesVerifiedByOpenvpn: next.config.identity['usernames-verified-by-openvpn'], groups: next.config.groups };
    await this.dispatcher.swap(new Pipeline(plugins, log));
    await closePlugins(old, log);
    log.info({ plugins: plugins.map((p) => p.name) }, 'reloaded');
    publishLifecycle(() => ({ what: 'reloaded', plugins: plugins.map((p) => p.name) }));
    // the new plugins may want other sets or routes for the same sessions
    void this.services.reconcile();
    return true;
  }

  /** Disconnects a live client through the source serving it (management mode only). */
  async kill(session: { readonly instance: string; readonly key?: ConnectionKey }, reason: string): Promise<void> {
    const { key } = session;
    const source = key?.via === 'management' ? this.management.get(key.instance) : undefined;
    if (!source || key?.via !== 'management')
      throw new Error(`cannot disconnect a client of ${session.instance}: it is not served through the management interface`);
    this.log.info({ instance: session.instance, cid: key.cid, reason }, 'disconnecting client');
    await source.kill(key, reason);
  }

  /** Stops the sources (answering what is in flight), then closes the plugins. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      publishLifecycle(() => ({ what: 'stopping' }));
      for (const s of [...this.opened].reverse()) {
        try {
          await s.close();
        } catch (err) {
          this.log.warn({ err: errorMessage(err) }, 'source close failed');
        }
      }
      await this.#reloading;
      await closePlugins(this.plugins, this.log);
      await this.services.close();
      this.log.info('flexscript daemon stopped');
      publishLifecycle(() => ({ what: 'stopped' }));
    })();
    return this.#closing;
  }
}

/** Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads. */
export async function runDaemon(configPath: string): Promise<void> {
  const daemon = await Daemon.start(configPath);
  // a storm's memory goes back once the daemon is quiet again
  const trim = startHeapTrim();
  process.on('SIGHUP', () => void daemon.reload());
  // a daemon must not die of one stray rejection; it is logged instead
  process.on('unhandledRejection', (err) => daemon.log.error({ err: errorMessage(err) }, 'unhandled rejection'));
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      daemon.log.info({ signal }, 'shutting down');
      trim.stop();
      void daemon.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * @module daemon
 * flexscriptd: one long-lived process that reads the config and plugins once, serves every
 * event source, reloads on SIGHUP (keeping the old config and plugins if the new ones are
 * invalid) and shuts down in the reverse order of start-up on SIGTERM.
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, errorMessage } from '../errors.ts';
import { loadConfig, type LoadedConfig } from '../config/load-config.ts';
import { createLogger, type Logger } from '../logger.ts';
import { closePlugins, loadPlugins, type LoadedPlugin } from '../plugins/load-plugins.ts';
import { Pipeline, type PipelineOptions } from '../pipeline/pipeline.ts';
import { HookServer } from '../sources/hook/hook-server.ts';
import type { ManagementSource } from '../sources/management/management-source.ts';
import { Dispatcher, type DispatchRecord } from './dispatcher.ts';

export interface DaemonOptions {
  readonly log?: Logger;
  /** Observers for live output (demo) and metrics. */
  readonly onDecision?: (record: DispatchRecord) => void;
  readonly pipeline?: PipelineOptions;
}

export class Daemon {
  #closing: Promise<void> | undefined;
  /** Management sources by instance name (for status and kill). */
  readonly management = new Map<string, ManagementSource>();
  #reloading: Promise<boolean> | undefined;

  private constructor(
    private loaded: LoadedConfig,
    private plugins: LoadedPlugin[],
    readonly log: Logger,
    readonly dispatcher: Dispatcher,
    private readonly sources: { close(): Promise<void> }[],
    private readonly options: DaemonOptions,
  ) {}

  get config(): LoadedConfig {
    return this.loaded;
  }

  static async start(configPath: string, options: DaemonOptions = {}): Promise<Daemon> {
    const loaded = await loadConfig(configPath);
    const log = options.log ?? createLogger(loaded.config.log.level);
    const plugins = await loadPlugins(loaded, log);
    const dispatcher = new Dispatcher(new Pipeline(plugins, log, options.pipeline), log, loaded.config.pipeline.concurrency, options.onDecision);
    const sources: { close(): Promise<void> }[] = [];
    const daemon = new Daemon(loaded, plugins, log, dispatcher, sources, options);
    try {
      const { hook } = loaded.config;
      if (hook) {
        const server = new HookServer({ config: hook, instance: loaded.config.instance, dispatcher, log: log.child({ source: 'hook' }) });
        await server.start();
        sources.push(server);
      }
      const { management } = loaded.config;
      // loaded only when used, like every source
      const { ManagementSource } = management ? await import('../sources/management/management-source.ts') : { ManagementSource: undefined };
      for (const instance of management?.instances ?? []) {
        const source = await ManagementSource!.start({
          config: instance,
          dispatcher,
          log: log.child({ source: 'management', instance: instance.name }),
          commandTimeoutMs: management!['command-timeout'],
        });
        sources.push(source);
        daemon.management.set(instance.name, source);
      }
      const passThrough = management?.['pass-through'];
      if (passThrough) {
        const { PassThroughServer } = await import('../sources/management/pass-through.ts');
        const server = new PassThroughServer(passThrough, daemon.management, dispatcher, log.child({ source: 'pass-through' }));
        await server.start();
        sources.push(server);
      }
    } catch (err) {
      await daemon.close();
      throw err;
    }
    log.info({ config: loaded.file, instance: loaded.config.instance, plugins: plugins.map((p) => p.name) }, 'flexscript daemon started');
    return daemon;
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
      plugins = await loadPlugins(next, log);
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map((p) => `${p.file}:${p.line}: ${p.field}: ${p.problem}`) : [errorMessage(err)];
      log.error({ problems }, 'reload refused; keeping the running config and plugins');
      return false;
    }
    const { hook, management, instance } = this.loaded.config;
    if (!isDeepStrictEqual(next.config.hook, hook) || !isDeepStrictEqual(next.config.management, management) || next.config.instance !== instance) {
      log.warn('changes to hook:, management: and instance: take effect at the next restart');
    }
    const old = this.plugins;
    this.plugins = plugins;
    this.loaded = next;
    log.level = next.config.log.level;
    await this.dispatcher.swap(new Pipeline(plugins, log, this.options.pipeline));
    await closePlugins(old, log);
    log.info({ plugins: plugins.map((p) => p.name) }, 'reloaded');
    return true;
  }

  /** Stops the sources (answering what is in flight), then closes the plugins. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const s of [...this.sources].reverse()) {
        try {
          await s.close();
        } catch (err) {
          this.log.warn({ err: errorMessage(err) }, 'source close failed');
        }
      }
      await this.#reloading;
      await closePlugins(this.plugins, this.log);
      this.log.info('flexscript daemon stopped');
    })();
    return this.#closing;
  }
}

/** Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads. */
export async function runDaemon(configPath: string): Promise<void> {
  const daemon = await Daemon.start(configPath);
  process.on('SIGHUP', () => void daemon.reload());
  // a daemon must not die of one stray rejection; it is logged instead
  process.on('unhandledRejection', (err) => daemon.log.error({ err: errorMessage(err) }, 'unhandled rejection'));
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      daemon.log.info({ signal }, 'shutting down');
      void daemon.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

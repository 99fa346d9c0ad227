/**
 * @module services
 * What the daemon shares with plugins, each behind a narrow interface of the plugin API: the
 * root stage's actions (one stage for all plugins, started once) and a read-only view of the
 * root config, the session records in the store, the live sessions and a way to disconnect a
 * client. The root stage is reconciled with what the plugins want for the live sessions whenever
 * it (re)starts and after sessions were rebuilt, so a restart of either side leaves no stale set
 * element or route.
 */
import { errorMessage } from '../errors.ts';
import type { Config } from '../config/config-schema.ts';
import type { ConnectionKey } from '../core/client.ts';
import type { Logger } from '../logger.ts';
import { publishLifecycle } from '../observe/channels.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { LiveSession, RootActions, RootRules, SessionRecords, Services, WebLoginStates } from '../plugins/plugin-api.ts';
import type { DesiredState, RouteSpec } from '../root/protocol.ts';
import type { RootClient } from '../root/root-client.ts';
import type { SessionTable } from '../sessions/session-table.ts';
import type { Store } from '../store/store.ts';
import { StoreSessionRecords } from './session-records.ts';

const REBUILD_WAIT_MS = 15_000;

/** Disconnects a client of one instance, by the session's key. */
export type Killer = (session: LiveSession & { readonly key?: ConnectionKey }, reason: string) => Promise<void>;

export class DaemonServices implements Services {
  root: RootClient | undefined;
  rootRules: (() => Promise<RootRules>) | undefined;
  records: SessionRecords | undefined;
  /** Web logins in progress, when the store is shared (PostgreSQL). */
  webLogins: WebLoginStates | undefined;
  #store: Store | undefined;
  #table: SessionTable | undefined;
  #plugins: () => readonly LoadedPlugin[] = () => [];
  #killer: Killer | undefined;
  #reconciling: Promise<void> | undefined;
  #again = false;
  /** Sources that have not yet said who is connected; the first reconcile waits for them. */
  readonly #awaiting = new Set<string>();
  #rebuiltAll: () => void = () => {};
  readonly #allRebuilt = new Promise<void>((resolve) => (this.#rebuiltAll = resolve));

  private constructor(private readonly log: Logger) {}

  /** The store, when the config has one. */
  get store(): Store | undefined {
    return this.#store;
  }

  /** Opens the store and prepares (does not start) the root stage. */
  static async open(config: Config, log: Logger): Promise<DaemonServices> {
    const services = new DaemonServices(log);
    try {
      if (config.store) {
        const { openStore } = await import('../store/open-store.ts');
        services.#store = await openStore(config.store, log.child({ component: 'store' }));
        services.records = new StoreSessionRecords(services.#store);
        if (services.#store.kind === 'postgres') services.webLogins = services.#store.webLogins;
      }
      if (config.root) {
        services.rootRules = rootRulesReader(config.root.config);
        const { RootClient } = await import('../root/root-client.ts');
        services.root = new RootClient({
          config: config.root.config,
          command: config.root.command,
          timeoutMs: config.root.timeout,
          log: log.child({ component: 'root' }),
          desiredState: () => services.settledDesiredState(),
        });
      }
    } catch (err) {
      await services.close();
      throw err;
    }
    return services;
  }

  /**
   * A live client's groups changed (a re-authentication): its record keeps the groups it has now,
   * and the kernel follows (firewall sets, routes: plugins' kernelState reads the groups). A client
   * that left a group loses the flows it opened as a member.
   */
  groupsChanged(
    session: Pick<LiveSession, 'instance' | 'commonName' | 'realAddress' | 'realPort' | 'vpnAddress' | 'vpnAddress6' | 'groups'>,
    before: readonly string[],
  ): void {
    const { instance, commonName, realAddress, realPort, groups } = session;
    this.#store
      ?.setGroups({ instance, commonName, realAddress, realPort }, groups)
      .catch((err: unknown) => this.log.warn({ instance, commonName, err: errorMessage(err) }, 'could not record the changed groups'));
    const left = before.some((g) => !groups.includes(g));
    void this.reconcile().then(async () => {
      if (!left || !this.root) return;
      for (const address of [session.vpnAddress, session.vpnAddress6]) {
        if (address)
          await this.root.conntrackFlush(address).catch((err: unknown) => this.log.warn({ address, err: errorMessage(err) }, 'conntrack flush failed'));
      }
    });
  }

  /** Ties the services to the running daemon, then starts the root stage. */
  attach(table: SessionTable, plugins: () => readonly LoadedPlugin[], killer: Killer): void {
    this.#table = table;
    this.#plugins = plugins;
    this.#killer = killer;
    this.root?.start();
  }

  readonly sessions = {
    list: (): readonly LiveSession[] => this.#table?.list() ?? [],
  };

  kill(session: LiveSession, reason: string): Promise<void> {
    if (!this.#killer) return Promise.reject(new Error('the daemon is not running'));
    return this.#killer(session, reason);
  }

  /**
   * Registers a source that rebuilds live sessions after a restart (management `status`, hook
   * status file); returns what it calls when done. Until all are done (or 15 s have passed) the
   * root stage's first reconcile waits, so a restart does not empty the sets of live clients.
   */
  rebuildGate(source: string): () => void {
    this.#awaiting.add(source);
    return () => {
      this.#awaiting.delete(source);
      if (this.#awaiting.size === 0) this.#rebuiltAll();
    };
  }

  /** The desired state once the live sessions are known. */
  async settledDesiredState(): Promise<DesiredState> {
    if (this.#awaiting.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#allRebuilt, new Promise<void>((resolve) => (timer = setTimeout(resolve, REBUILD_WAIT_MS)))]);
      clearTimeout(timer);
      if (this.#awaiting.size > 0) this.log.warn({ waiting: [...this.#awaiting] }, 'reconciling before every source knows its live clients');
    }
    return this.desiredState();
  }

  /** What the kernel should hold for the live sessions: every plugin's wish, merged. */
  desiredState(): DesiredState {
    const sessions = this.sessions.list();
    const sets: Record<string, Set<string>> = {};
    const routes = new Map<string, RouteSpec>();
    for (const p of this.#plugins()) {
      if (typeof p.instance.kernelState !== 'function') continue;
      try {
        const want = p.instance.kernelState(sessions);
        for (const [group, addresses] of Object.entries(want.sets ?? {})) {
          const set = (sets[group] ??= new Set());
          for (const a of addresses) set.add(a);
        }
        for (const r of want.routes ?? []) routes.set(`${r.network} ${r.table ?? ''}`, r);
      } catch (err) {
        this.log.error({ plugin: p.name, err: errorMessage(err) }, 'plugin could not say its kernel state');
      }
    }
    return { sets: Object.fromEntries(Object.entries(sets).map(([g, s]) => [g, [...s]])), routes: [...routes.values()] };
  }

  /** An instance's live clients are known anew: plugins hear of it, then the kernel is reconciled. */
  async rebuilt(instance: string, asOf = Date.now()): Promise<void> {
    const live = this.sessions.list().filter((s) => s.instance === instance);
    for (const p of this.#plugins()) {
      if (typeof p.instance.sessionsRebuilt !== 'function') continue;
      try {
        await p.instance.sessionsRebuilt(instance, live, asOf);
      } catch (err) {
        this.log.error({ plugin: p.name, instance, err: errorMessage(err) }, 'plugin failed after sessions were rebuilt');
      }
    }
    await this.reconcile();
  }

  /** Makes the kernel match the live sessions (after a rebuild); calls while one runs coalesce. */
  reconcile(): Promise<void> {
    const root = this.root;
    if (!root) return Promise.resolve();
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false;
        try {
          const result = await root.reconcile(this.desiredState());
          this.log.info({ component: 'root', ...result }, 'kernel state reconciled');
          publishLifecycle(() => ({ what: 'kernel-reconciled', sets: result.sets, routes: result.routes }));
        } catch (err) {
          this.log.error({ component: 'root', err: errorMessage(err) }, 'reconcile failed');
          publishLifecycle(() => ({ what: 'kernel-reconcile-failed', error: errorMessage(err) }));
        }
      } while (this.#again);
    })().finally(() => (this.#reconciling = undefined));
    return this.#reconciling;
  }

  async close(): Promise<void> {
    await this.#reconciling;
    await this.root?.close().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'root stage close failed'));
    await this.#store?.close().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'store close failed'));
  }
}

/** Reads the root config into the view plugins get (what it allows, not how the stage enforces it). */
export function rootRulesReader(file: string): () => Promise<RootRules> {
  return async () => {
    const { loadRootConfig } = await import('../root/root-config.ts');
    const config = await loadRootConfig(file);
    return {
      file,
      groups: [...config.groups.keys()],
      allowedRoutes: config.routes.allowed.map((n) => n.text),
      vpnInterfaces: config.vpnInterfaces,
    };
  };
}

/**
 * Services for loading plugins without running them (`flexscript check`, `openvpn-config`):
 * the root stage and session records are there when configured, so a plugin that needs them
 * loads (and checks its options against the root config), but every call fails.
 */
export function offlineServices(config: Config): Services {
  const refuse = () => Promise.reject(new Error('not available while checking the config'));
  const root: RootActions | undefined = config.root
    ? { setAdd: refuse, setRemove: refuse, routeAdd: refuse, routeRemove: refuse, conntrackFlush: refuse }
    : undefined;
  const records: SessionRecords | undefined = config.store
    ? {
        open: refuse,
        claim: refuse,
        forget: refuse,
        addAddress: refuse,
        close: refuse,
        closeMissed: refuse,
        closeUnseen: refuse,
        recordDenial: refuse,
        markKilled: refuse,
        requestKill: refuse,
        takeKillRequests: refuse,
        limitKey: () => {
          throw new Error('not available while checking the config');
        },
      }
    : undefined;
  // no webLogins: nothing is served while checking (a plugin that shares logins keeps to itself)
  return { root, rootRules: config.root && rootRulesReader(config.root.config), records, sessions: { list: () => [] }, kill: refuse };
}

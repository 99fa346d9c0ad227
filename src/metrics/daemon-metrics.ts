/**
 * @module daemon-metrics
 * The daemon's Prometheus metrics, in a registry of its own (never prom-client's global one, so
 * plugins or a second daemon in one process cannot collide with them). Counters and histograms
 * are fed by the daemon's channels (src/observe: decisions, plugin calls, root-stage actions)
 * once `subscribe` is called; gauges are read from the running daemon at scrape time through
 * `bind`, so they can never drift from the real state.
 *
 * @example
 * const metrics = new DaemonMetrics();
 * const unsubscribe = metrics.subscribe();
 * metrics.bind({ queued: () => dispatcher.queued, sessions: () => dispatcher.sessions.list() });
 * const text = await metrics.text();
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { decisions, onFinished, pluginCalls, rootActions, type DecisionMessage, type PluginCallMessage, type RootActionMessage } from '../observe/channels.ts';

/** What the gauges read at each scrape. Every field is optional: a daemon without a root stage has no root stats. */
export interface MetricsProbes {
  /** Events waiting for a pipeline slot. */
  readonly queued?: () => number;
  /** Live sessions (only `instance` is read). */
  readonly sessions?: () => readonly { readonly instance: string }[];
  /** Instances the daemon serves, so an instance with no client still shows 0. */
  readonly instances?: () => readonly string[];
  /** Root stage: how often it was started (the first start is not a restart) and whether it runs now. */
  readonly root?: () => { readonly starts: number; readonly state: string } | undefined;
  /** Management instances and whether the daemon is attached to each. */
  readonly management?: () => readonly { readonly instance: string; readonly attached: boolean }[];
  /** The store's waits on its database (absent without `store:`). */
  readonly store?: () => { readonly roundTrips: number } | undefined;
  /** The counters plugins keep (`counters()`), by plugin name. */
  readonly pluginCounters?: () => readonly { readonly plugin: string; readonly counters: Readonly<Record<string, number>> }[];
}

/** A counter name a plugin may use as a label value. */
const COUNTER_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** Plugin calls are short: from 1 ms up to the longest time limits (a pending auth may take a minute). */
const CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class DaemonMetrics {
  readonly registry = new Registry();
  #probes: MetricsProbes = {};
  readonly #events: Counter<'event' | 'source'>;
  readonly #decisions: Counter<'event' | 'verdict'>;
  readonly #calls: Histogram<'plugin' | 'event' | 'outcome'>;
  readonly #rootActions: Counter<'action'>;
  readonly #rootErrors: Counter<'action' | 'code'>;
  readonly #rootSeconds: Histogram<'action'>;

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#events = new Counter({
      name: 'flexscript_events_total',
      help: 'Events handled, by event and source (hook or management).',
      labelNames: ['event', 'source'],
      registers,
    });
    this.#decisions = new Counter({
      name: 'flexscript_decisions_total',
      help: 'Final answers to OpenVPN for events that can refuse a client (tls-verify, user-pass-verify, client-connect, learn-address).',
      labelNames: ['event', 'verdict'],
      registers,
    });
    this.#calls = new Histogram({
      name: 'flexscript_plugin_call_seconds',
      help: 'Time of one plugin handler call, by plugin, event and outcome (ok, deny, error, timeout).',
      labelNames: ['plugin', 'event', 'outcome'],
      buckets: CALL_BUCKETS,
      registers,
    });
    this.#rootActions = new Counter({
      name: 'flexscript_root_actions_total',
      help: 'Requests sent to the root stage, by action.',
      labelNames: ['action'],
      registers,
    });
    this.#rootErrors = new Counter({
      name: 'flexscript_root_errors_total',
      help: 'Root-stage requests that failed, by action and error code.',
      labelNames: ['action', 'code'],
      registers,
    });
    this.#rootSeconds = new Histogram({
      name: 'flexscript_root_action_seconds',
      help: 'Time of one root-stage request, by action.',
      labelNames: ['action'],
      buckets: CALL_BUCKETS,
      registers,
    });
    const probes = () => this.#probes;
    new Gauge({
      name: 'flexscript_queue_depth',
      help: 'Events waiting for a pipeline slot (pipeline.concurrency are running).',
      registers,
      collect() {
        this.set(probes().queued?.() ?? 0);
      },
    });
    new Gauge({
      name: 'flexscript_live_sessions',
      help: 'Connected clients, by OpenVPN instance.',
      labelNames: ['instance'],
      registers,
      collect() {
        this.reset();
        const counts = new Map((probes().instances?.() ?? []).map((i) => [i, 0]));
        for (const s of probes().sessions?.() ?? []) counts.set(s.instance, (counts.get(s.instance) ?? 0) + 1);
        for (const [instance, n] of counts) this.set({ instance }, n);
      },
    });
    new Gauge({
      name: 'flexscript_root_stage_restarts',
      help: 'Times the root stage was started again after it stopped.',
      registers,
      collect() {
        this.set(Math.max(0, (probes().root?.()?.starts ?? 0) - 1));
      },
    });
    new Gauge({
      name: 'flexscript_root_stage_up',
      help: '1 while the root stage runs, 0 while it is down or restarting (absent without root:).',
      registers,
      collect() {
        this.reset();
        const root = probes().root?.();
        if (root) this.set(root.state === 'running' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'flexscript_management_connected',
      help: '1 while the daemon is attached to the OpenVPN management interface of the instance, else 0.',
      labelNames: ['instance'],
      registers,
      collect() {
        this.reset();
        for (const m of probes().management?.() ?? []) this.set({ instance: m.instance }, m.attached ? 1 : 0);
      },
    });
    new Gauge({
      // read at scrape time from the store's own count, which starts again with the daemon
      name: 'flexscript_store_round_trips_total',
      help: 'Waits on the store since the daemon started: PostgreSQL statements sent, or SQLite commits (absent without store:).',
      registers,
      collect() {
        this.reset();
        const stats = probes().store?.();
        if (stats) this.set(stats.roundTrips);
      },
    });
    new Gauge({
      // a gauge read at scrape time: a plugin's own count, which restarts with a reload
      name: 'flexscript_plugin_events_total',
      help: 'What plugins count for alerts (e.g. ldap-auth directory_unreachable), by plugin and name; read at each scrape.',
      labelNames: ['plugin', 'name'],
      registers,
      collect() {
        this.reset();
        for (const { plugin, counters } of probes().pluginCounters?.() ?? [])
          for (const [name, value] of Object.entries(counters)) if (COUNTER_NAME.test(name) && Number.isFinite(value)) this.set({ plugin, name }, value);
      },
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'flexscript_' });
  }

  /** Connects the gauges to the running daemon. */
  bind(probes: MetricsProbes): void {
    this.#probes = { ...this.#probes, ...probes };
  }

  /** Feeds the counters and histograms from the daemon's channels; returns the unsubscribe. */
  subscribe(): () => void {
    const offs = [onFinished(decisions, this.decision), onFinished(pluginCalls, this.pluginCall), onFinished(rootActions, this.rootAction)];
    return () => {
      for (const off of offs) off();
    };
  }

  /** A finished event that plugins decided: counted once, and the verdict of those that can refuse. */
  readonly decision = (m: DecisionMessage): void => {
    if (m.unhandled !== undefined) return;
    this.#events.inc({ event: m.event, source: m.source });
    if (canRefuse(m.event) && m.verdict !== undefined) this.#decisions.inc({ event: m.event, verdict: m.verdict });
  };

  /** A finished plugin handler call. */
  readonly pluginCall = (m: PluginCallMessage): void => {
    this.#calls.observe({ plugin: m.plugin, event: m.event, outcome: m.outcome ?? 'ok' }, (m.ms ?? 0) / 1000);
  };

  /** A finished root-stage request. */
  readonly rootAction = (m: RootActionMessage): void => {
    this.#rootActions.inc({ action: m.action });
    this.#rootSeconds.observe({ action: m.action }, (m.ms ?? 0) / 1000);
    if (m.code !== undefined) this.#rootErrors.inc({ action: m.action, code: m.code });
  };

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Events whose answer can keep a client out (or veto an address). */
function canRefuse(event: string): boolean {
  return event === 'client-connect' || event === 'tls-verify' || event === 'user-pass-verify' || event === 'learn-address';
}

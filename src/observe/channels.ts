/**
 * @module channels
 * What the daemon does, as typed messages on Node's `diagnostics_channel`: the one place that
 * names the channels and declares their messages. Metrics, `flexscript watch`, the demo and the
 * tests subscribe here instead of reading log text, so log wording stays free to change.
 *
 * Tracing channels (`tracing:NAME:start`, `…:asyncEnd`, `…:error`) wrap work that takes time:
 * an event through the dispatcher, a plugin call, a root-stage request. The same message object
 * is published at the start (what and who) and, filled in, at the end (verdict, time, outcome).
 * Lifecycle steps of the daemon go out on a plain channel. Publishers make no message while
 * nobody subscribes (`hasSubscribers`), so an unobserved daemon pays nothing.
 *
 * Messages never carry a password: they are built field by field from the parsed event.
 * On a tracing channel's end, Node adds the traced promise's `result` (or `error`) to the
 * message object, as for any tracing channel; `observeAll` passes on the declared fields only.
 *
 * @example
 * import { decisions } from './channels.ts';
 * decisions.subscribe({ asyncEnd: (m) => console.log(m.event, m.verdict, m.commonName) });
 */
import { channel, tracingChannel, type TracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel';
import type { RootActionMessage } from '../root/root-client.ts';

export type { RootActionMessage };

/** The channel names, for subscribers outside this process's modules (e.g. an APM agent). */
export const CHANNELS = {
  decision: 'flexscript:decision',
  pluginCall: 'flexscript:plugin-call',
  rootAction: 'flexscript:root-action',
  lifecycle: 'flexscript:lifecycle',
} as const;

/**
 * One event through the dispatcher. At the start: event, instance, source. At the end: who it
 * was about, the verdict, why (on a deny), the deciding plugin and the time inside the daemon.
 */
export interface DecisionMessage {
  readonly event: string;
  readonly instance: string;
  readonly source: string;
  commonName?: string;
  /** A username a plugin (or OpenVPN, where the config says so) verified; never a mere claim. */
  username?: string;
  /** A username the client sent that nobody verified: data for the operator, not identity. */
  claimedUsername?: string;
  verdict?: 'accept' | 'deny';
  reason?: string;
  /** The plugin that denied (or failed). */
  plugin?: string;
  /** Time inside the daemon, queue wait included. */
  ms?: number;
  realAddress?: string;
  realPort?: number;
  /** The addresses the client gets (client-connect: after the answer), or had. */
  vpnAddress?: string;
  vpnAddress6?: string;
  /** learn-address: add, update or delete, and the address. */
  operation?: string;
  address?: string;
  /** client-connect: the config lines the answer gives the client. */
  config?: readonly string[];
  /** client-connect: the groups the client is in (its authentication's, the rules', the plugins'). */
  groups?: readonly string[];
  reauth?: boolean;
  /** client-disconnect. */
  duration?: number;
  bytesReceived?: number;
  bytesSent?: number;
  missed?: boolean;
  /** tls-verify. */
  depth?: number;
  /**
   * Set when no plugin decided the event: it was malformed, the daemon failed on it, or it is
   * the disconnect of a client whose connect was denied (that client never had a session).
   */
  unhandled?: 'malformed' | 'internal-error' | 'denied-client-left';
}

/** One plugin handler call: plugin and event at the start; time and outcome at the end. */
export interface PluginCallMessage {
  readonly plugin: string;
  readonly event: string;
  ms?: number;
  outcome?: 'ok' | 'deny' | 'error' | 'timeout';
  /** Why it failed (outcome error or timeout). */
  failure?: string;
}

/** A step in the daemon's life. */
export type LifecycleMessage =
  | { readonly what: 'started'; readonly instance: string; readonly plugins: readonly string[] }
  | { readonly what: 'reloaded'; readonly plugins: readonly string[] }
  | { readonly what: 'reload-failed'; readonly problems: readonly string[] }
  | { readonly what: 'source-attached' | 'source-detached'; readonly source: 'management'; readonly instance: string }
  | {
      readonly what: 'sessions-rebuilt';
      readonly source: 'hook' | 'management';
      readonly instance: string;
      readonly rebuilt: number;
      readonly closedAsMissed?: number;
    }
  | {
      readonly what: 'kernel-reconciled';
      readonly sets: { readonly added: number; readonly removed: number };
      readonly routes: { readonly added: number; readonly removed: number };
    }
  | { readonly what: 'kernel-reconcile-failed'; readonly error: string }
  | { readonly what: 'stopping'; readonly signal?: string }
  | { readonly what: 'stopped' };

export const decisions = tracingChannel<DecisionMessage, DecisionMessage>(CHANNELS.decision);
export const pluginCalls = tracingChannel<PluginCallMessage, PluginCallMessage>(CHANNELS.pluginCall);
/** Opened by name in src/root/root-client.ts too (the root stage imports nothing outside its folder). */
export const rootActions = tracingChannel<RootActionMessage, RootActionMessage>(CHANNELS.rootAction);
export const lifecycle = channel(CHANNELS.lifecycle);

/** Publishes a lifecycle step; `make` runs only when someone listens. */
export function publishLifecycle(make: () => LifecycleMessage): void {
  if (lifecycle.hasSubscribers) lifecycle.publish(make());
}

/** Every finished message of every channel, as one stream: what `flexscript watch` sends. */
export type ObservedMessage =
  | { readonly channel: 'decision'; readonly data: DecisionMessage }
  | { readonly channel: 'plugin-call'; readonly data: PluginCallMessage }
  | { readonly channel: 'root-action'; readonly data: RootActionMessage }
  | { readonly channel: 'lifecycle'; readonly data: LifecycleMessage };

/**
 * Subscribes `fn` to the end of each traced call on `traced` (asyncEnd follows both a result
 * and an error); returns the unsubscribe.
 */
export function onFinished<M extends object>(traced: TracingChannel<M, M>, fn: (message: M) => void): () => void {
  const noop = () => {};
  const subscribers: TracingChannelSubscribers<M> = { start: noop, end: noop, asyncStart: noop, asyncEnd: fn, error: noop };
  traced.subscribe(subscribers);
  return () => void traced.unsubscribe(subscribers);
}

/**
 * Subscribes to the end of every traced message and to the lifecycle; returns the unsubscribe.
 * Each message is copied field by field (the channel's context object also holds the traced
 * promise's `result` or `error`, which a watcher must not get).
 */
export function observeAll(fn: (message: ObservedMessage) => void): () => void {
  const offs = [
    onFinished(decisions, (m) => fn({ channel: 'decision', data: decisionFields(m) })),
    onFinished(pluginCalls, (m) =>
      fn({ channel: 'plugin-call', data: { plugin: m.plugin, event: m.event, ms: m.ms, outcome: m.outcome, failure: m.failure } }),
    ),
    onFinished(rootActions, (m) => fn({ channel: 'root-action', data: { action: m.action, ms: m.ms, code: m.code } })),
  ];
  const onLifecycle = (m: unknown) => fn({ channel: 'lifecycle', data: m as LifecycleMessage });
  lifecycle.subscribe(onLifecycle);
  return () => {
    for (const off of offs) off();
    lifecycle.unsubscribe(onLifecycle);
  };
}

const DECISION_FIELDS = [
  'event',
  'instance',
  'source',
  'commonName',
  'username',
  'claimedUsername',
  'verdict',
  'reason',
  'plugin',
  'ms',
  'realAddress',
  'realPort',
  'vpnAddress',
  'vpnAddress6',
  'operation',
  'address',
  'config',
  'groups',
  'reauth',
  'duration',
  'bytesReceived',
  'bytesSent',
  'missed',
  'depth',
  'unhandled',
] as const satisfies readonly (keyof DecisionMessage)[];

/** The declared fields of a decision message, nothing else. */
function decisionFields(m: DecisionMessage): DecisionMessage {
  const out: Record<string, unknown> = {};
  for (const k of DECISION_FIELDS) if (m[k] !== undefined) out[k] = m[k];
  return out as unknown as DecisionMessage;
}

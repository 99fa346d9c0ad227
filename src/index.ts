/**
 * @module openvpn-flexscript
 * The public API: what plugin authors and embedders import. Re-exports only.
 */
export { definePlugin } from './plugins/plugin-api.ts';
export type {
  AuthContext,
  BaseContext,
  ClientState,
  ConnectContext,
  ContextMap,
  DecisionContext,
  SettledEvent,
  SettledEventName,
  Handler,
  KernelState,
  LiveSession,
  RootActions,
  RouteSpec,
  Services,
  PluginDefinition,
  PluginHandlers,
  PendingAuth,
  PluginInstance,
  SetupContext,
} from './plugins/plugin-api.ts';
export type * from './events/event-map.ts';
export { EVENT_NAMES } from './events/event-map.ts';
export type { Decision } from './core/decision.ts';
export type { Logger } from './logger.ts';
export type { Store } from './store/store.ts';
export * from './errors.ts';

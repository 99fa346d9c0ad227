/**
 * @module plugin-api
 * What a plugin author writes against. A plugin is a module whose default export is made with
 * `definePlugin`: a name, an optional options schema, and a `setup` that returns typed handlers.
 * Plugins need no runtime import from this package: the schema builder receives zod, and types
 * come through `import type`.
 *
 * @example
 * import type { PluginDefinition } from 'openvpn-flexscript';
 * export default {
 *   name: 'office-routes',
 *   options: (z) => z.object({ network: z.string() }),
 *   setup: ({ options }) => ({
 *     'client-connect': (event, ctx) => ctx.push(`route ${options.network}`),
 *   }),
 * } satisfies PluginDefinition<{ network: string }>;
 */
import type { z } from 'zod';
import type { ClientDisconnectEvent, EventMap, EventName } from '../events/event-map.ts';
import type { Logger } from '../logger.ts';
import type { Client, ClientIdentity } from '../core/client.ts';
import type { Challenge, Decision, PendingAuth } from '../core/decision.ts';
import type { ClientState } from '../sessions/session-table.ts';
import type { DenialRecord, KillRequest, LimitKey, SessionLimit, SessionRecord } from '../store/store.ts';
import type { WebLoginClient, WebLoginMiss, WebLoginOpen, WebLoginOutcome, WebLoginSecrets, WebLoginStates, WebLoginStep } from '../store/web-logins.ts';

export { EVENT_NAMES } from '../events/event-map.ts';
export type * from '../events/event-map.ts';
export type { Challenge, Client, ClientIdentity, ClientState, Decision, DenialRecord, KillRequest, LimitKey, Logger, PendingAuth, SessionLimit, SessionRecord };
export type { WebLoginClient, WebLoginMiss, WebLoginOpen, WebLoginOutcome, WebLoginSecrets, WebLoginStates, WebLoginStep };

export interface BaseContext {
  /** The plugin's child logger (carries the plugin's name). */
  readonly log: Logger;
  /** Aborted when the handler's time limit runs out: pass it to fetch, timers, queries. */
  readonly signal: AbortSignal;
  /** This plugin's state for the client, where the event belongs to a known client session. */
  readonly state: ClientState | undefined;
  /**
   * The client session the event belongs to, where the daemon knows it: on client-connect the
   * session being decided, on client-disconnect the one ending, on learn-address the live session
   * holding the address (found through the daemon's address index: no plugin needs to search
   * `services.sessions` for it).
   */
  readonly session?: LiveSession;
}

export interface DecisionContext extends BaseContext {
  /**
   * Refuses the client (or the route, for learn-address). Any deny wins; later plugins do not run.
   * `reason` goes to the log; `clientReason`, where OpenVPN supports it, is sent to the client.
   */
  deny(reason: string, clientReason?: string): void;
}

export interface AuthContext extends DecisionContext {
  /**
   * Announces that the answer will take a while. In management mode OpenVPN is told with
   * `client-pending-auth` and keeps the client waiting up to `timeout`; in hook mode the
   * deferral already waits (up to OpenVPN's hand-window). Either way the handler's time limit
   * becomes `timeout`; the handler then allows or denies as usual.
   */
  pending(auth: PendingAuth): void;
  /**
   * Puts the client in groups (a directory's groups, the users file's, a provider's claims):
   * every plugin matching on groups sees them in `session.groups`. They count only if the client
   * is accepted, and from user-pass-verify only when this plugin verifies usernames
   * (`verifiesUsernames`; another plugin's are ignored): they are carried to the client-connect
   * of the same connection. A client's groups there are those, the config's static `groups:`
   * rules', and those added by client-connect plugins, each visible to the plugins after the one
   * that added it. A re-authenticated live client keeps the groups its earlier authentication
   * gave unless a verifying plugin calls this again, even with no names (a directory user removed
   * from every group): then those are replaced; the rules' and connect plugins' stay. Names are
   * data, kept as given and compared exactly.
   */
  addGroups(...groups: string[]): void;
  /**
   * Names the verified user where it is not what the client sent (a provider's claim, after a
   * web login): from client-connect on, `event.username` and the session's username are this
   * name. Counts only if the client is accepted, and only from a plugin that verifies usernames
   * (user-pass-verify); the last call wins. Data, kept as given.
   */
  setUsername(username: string): void;
  /**
   * Asks the client a question and resolves with what the user answered (a one-time code).
   * Management mode: OpenVPN is told `client-pending-auth ... "CR_TEXT:..."` and the client's
   * `>CLIENT:CR_RESPONSE` is the answer; hook mode: the question goes into `auth_pending_file`
   * while the user-pass-verify hook waits (ask mode) and the client-crresponse hook brings the
   * answer. The handler's time limit becomes `timeout`. Rejects where the source cannot ask
   * (FXS_CHALLENGE_UNAVAILABLE), on timeout, and when the client leaves. The answer is
   * client-controlled text.
   */
  challenge(challenge: Challenge): Promise<string>;
}

export interface ConnectContext extends AuthContext {
  readonly state: ClientState;
  /** Adds a raw config line for this client (`ifconfig-push ...`, `iroute ...`, `push "..."`). */
  config(line: string): void;
  /** Pushes an option to the client: `push('route 10.1.0.0 255.255.0.0')` adds `push "route ..."`. */
  push(option: string): void;
}

export interface ContextMap {
  up: BaseContext;
  down: BaseContext;
  'route-up': BaseContext;
  'route-pre-down': BaseContext;
  ipchange: BaseContext;
  'tls-verify': DecisionContext;
  'user-pass-verify': AuthContext;
  'client-connect': ConnectContext;
  'client-disconnect': BaseContext & { readonly state: ClientState };
  'learn-address': DecisionContext;
}

/** A handler may be async; its return value is awaited and otherwise ignored. */
export type Handler<K extends EventName> = (event: EventMap[K], ctx: ContextMap[K]) => unknown;

export type PluginHandlers = { readonly [K in EventName]?: Handler<K> };

export interface PluginInstance extends PluginHandlers {
  /**
   * True when this plugin's user-pass-verify handler checks the client's credentials (a
   * password, a token): a username it lets through becomes the client's identity on
   * client-connect (`event.username`, the session's username), where groups, client config and
   * session limits see it. A plugin that only looks at user-pass-verify (to log or record it)
   * leaves this unset: its accept proves nothing, and the username stays the client's claim.
   */
  readonly verifiesUsernames?: boolean;
  /** Called on shutdown and when a reload replaces this instance. */
  close?(): void | Promise<void>;
  /**
   * Counts the plugin keeps of what operators alert on (e.g. `directory_unreachable`), read at
   * each metrics scrape as `flexscript_plugin_events_total{plugin, name}`. Names are lowercase
   * letters, digits and `_`; values only grow while this instance lives.
   */
  counters?(): Readonly<Record<string, number>>;
  /**
   * Asked by `flexscript check` after setup: reach what the plugin depends on (a directory, a
   * service) and say what was found, or why it could not (`ok: false` fails the check).
   */
  check?(): PluginCheck | Promise<PluginCheck>;
  /**
   * Called with the final answer of tls-verify, user-pass-verify and client-connect, after every
   * plugin has run and before OpenVPN is answered, for every plugin that has it (also those after
   * the one that denied). Record or apply an accepted client here: if it throws on an accept, the
   * client is denied, and plugins whose `decided` already ran get a second call with that deny.
   */
  decided?(event: SettledEvent, outcome: Decision, session: LiveSession | undefined): unknown;
  /** The kernel state this plugin wants for the live sessions (asked when reconciling). */
  kernelState?(sessions: readonly LiveSession[]): KernelState;
  /**
   * Called after the daemon learned an instance's live clients anew (management `status` on
   * every attach; hook mode's status file at start): clients missing from `live` that
   * connected before `asOf` (ms; when the list was taken) have left while nobody was watching.
   */
  sessionsRebuilt?(instance: string, live: readonly LiveSession[], asOf: number): unknown;
}

/** What a plugin's `check` found: one line for the operator. */
export interface PluginCheck {
  readonly ok: boolean;
  readonly message: string;
}

/** A live client session as plugins see it (all instances this daemon serves): the client and its session id. */
export interface LiveSession extends Omit<Client, 'key'> {
  readonly id: string;
}

/** A route into OpenVPN's tun device, for the networks behind a client. */
export interface RouteSpec {
  /** `192.168.10.0/24`, `fd00:10::/64`: inside the root config's `routes.allowed`. */
  readonly network: string;
  readonly via?: string;
  /** One of the root config's `vpn-interfaces`. */
  readonly dev?: string;
  /** One of the root config's `routes.tables`; the first by default. */
  readonly table?: number;
}

/** The root stage's readiness: whether its nft table (with the drop rule) is in place, and if not, why. */
export interface TableStatus {
  readonly ready: boolean;
  /** The root stage is starting and has not failed. */
  readonly pending?: boolean;
  readonly reason?: string;
}

/**
 * Root work, done by the root stage (`flexscript-root`). Only names from the root config and
 * parsed addresses pass; anything else is refused there with an FXS_ROOT_* error code.
 */
export interface RootActions {
  setAdd(group: string, address: string): Promise<void>;
  setRemove(group: string, address: string): Promise<void>;
  routeAdd(route: RouteSpec): Promise<{ readonly changed: boolean }>;
  routeRemove(route: RouteSpec): Promise<{ readonly changed: boolean }>;
  conntrackFlush(address: string): Promise<{ readonly deleted: number }>;
  /** Whether the root stage has put its nft table in place; `pending` while it is starting. */
  tableStatus?(): TableStatus;
  /** Resolves with tableStatus() once it is no longer pending, or when `signal` aborts. */
  tableSettled?(signal?: AbortSignal): Promise<TableStatus>;
}

/**
 * What the root config (`root.yaml`, owned by root) allows, read-only: a plugin checks at setup
 * that what its options name exists there, since the root stage refuses anything else.
 */
export interface RootRules {
  /** The root config file, for messages. */
  readonly file: string;
  /** The groups it defines: the only names setAdd and setRemove accept. */
  readonly groups: readonly string[];
  /** The networks a route must lie inside (`routes.allowed`), e.g. `192.168.0.0/16`. */
  readonly allowedRoutes: readonly string[];
  /** OpenVPN's tun devices (`vpn-interfaces`): the only devices a route may name. */
  readonly vpnInterfaces: readonly string[];
}

/**
 * Session records in the store (accounting, session limits), one shared service: it alone opens,
 * updates and closes a record. Each write resolves once durable. Plugins that keep records hand
 * it the lifecycle (disconnects, rebuilds); it acts once per event however many plugins do.
 */
export interface SessionRecords {
  /** Records an accepted session. */
  open(session: LiveSession): Promise<void>;
  /**
   * Counts the open records of the session's limit key and records the session, in one step
   * (serialised per key, across every daemon sharing the store): at `max`, `refuse` records
   * nothing. `others` are the key's other open records, oldest first.
   */
  claim(session: LiveSession, limit: SessionLimit): Promise<{ readonly recorded: boolean; readonly others: readonly SessionRecord[] }>;
  /** Drops the record of a session that never began (a plugin refused it after it was recorded). */
  forget(sessionId: string): Promise<void>;
  /** Notes a VPN address OpenVPN learned for a live session (`10.8.0.2`, `fd00::2`). */
  addAddress(sessionId: string, address: string): Promise<void>;
  /**
   * Closes the record of a disconnecting client, found by its connection (instance, common name,
   * real address and port), so also after a daemon restart. False when none was open.
   */
  close(event: ClientDisconnectEvent): Promise<boolean>;
  /**
   * After an instance's live clients were learned anew (`sessionsRebuilt`): closes as `missed` the
   * instance's open records whose client is not in `live` and began before `asOf`. Returns how many.
   */
  closeMissed(instance: string, live: readonly LiveSession[], asOf: number): Promise<number>;
  /** Closes one open record as `missed`: its client left while nobody watched. */
  closeUnseen(record: SessionRecord): Promise<void>;
  recordDenial(denial: DenialRecord): Promise<void>;
  /** Marks a record as ended by a plugin (`killed`), or takes that back (`killed: false`). */
  markKilled(sessionId: string, killed?: boolean): Promise<void>;
  /** Asks the daemon serving `request.instance` to disconnect a client. */
  requestKill(request: KillRequest): Promise<void>;
  /** Takes the requests for these instances made since `since` (ms); each is taken once. */
  takeKillRequests(instances: readonly string[], since: number): Promise<KillRequest[]>;
  /** The key a session counts against in limits: its verified username, else its common name. */
  limitKey(session: { readonly username?: string; readonly commonName: string }): LimitKey;
}

/** What the daemon shares with every plugin. */
export interface Services {
  /** The root stage, when the config has a `root:` section. */
  readonly root?: RootActions;
  /** Reads the root config anew (a reload sees an edited file); with `root`. */
  readonly rootRules?: () => Promise<RootRules>;
  /** Session records, when the config has a `store:` section. */
  readonly records?: SessionRecords;
  /**
   * Web logins in progress, shared by every daemon using the same store: present only when the
   * store is PostgreSQL (several daemons behind one callback URL), and only in the running
   * daemon (not while `flexscript check` loads the plugins). Each step is taken once across all
   * of them.
   */
  readonly webLogins?: WebLoginStates;
  /** Live sessions, rebuilt after a daemon restart (management `status`, hook status file). */
  readonly sessions: { list(): readonly LiveSession[] };
  /** Disconnects a live client; needs the client's instance in management mode. */
  kill(session: LiveSession, reason: string): Promise<void>;
}

/** Kernel state a plugin wants while its clients are connected, merged for reconciling. */
export interface KernelState {
  /** Root-config group name → VPN addresses in that group's set. */
  readonly sets?: Readonly<Record<string, readonly string[]>>;
  readonly routes?: readonly RouteSpec[];
}

/** Events whose final answer plugins hear in `decided`. */
export type SettledEventName = 'tls-verify' | 'user-pass-verify' | 'client-connect';
export type SettledEvent = EventMap[SettledEventName];

export interface SetupContext<O> {
  readonly options: O;
  readonly log: Logger;
  /** The `instance` name of the OpenVPN server from the config. */
  readonly instance: string;
  /** Folder of the config file, for resolving the plugin's own relative paths. */
  readonly configDir: string;
  /** Aborted when setup exceeds its time limit. */
  readonly signal: AbortSignal;
  readonly services: Services;
}

export interface PluginDefinition<O = undefined> {
  readonly name: string;
  /** Builds the options schema; options are validated before `setup` runs. */
  readonly options?: (zod: typeof z) => z.ZodType<O>;
  setup(ctx: SetupContext<O>): PluginInstance | Promise<PluginInstance>;
}

/** Identity helper that gives a plugin object its types. */
export function definePlugin<O = undefined>(definition: PluginDefinition<O>): PluginDefinition<O> {
  return definition;
}

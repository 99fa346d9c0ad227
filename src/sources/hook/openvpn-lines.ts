/**
 * @module openvpn-lines
 * The lines an operator adds to OpenVPN's server config for hook mode. Pure: derived from the
 * config and from which events the loaded plugins handle.
 */
import { EVENT_NAMES, type EventName } from '../../events/event-map.ts';
import type { Config, HookConfig } from '../../config/config-schema.ts';

/** OpenVPN's option name for each hook (it differs from script_type for auth). */
export const HOOK_OPTION: Record<EventName, string> = {
  up: 'up',
  down: 'down',
  'route-up': 'route-up',
  'route-pre-down': 'route-pre-down',
  ipchange: 'ipchange',
  'tls-verify': 'tls-verify',
  'user-pass-verify': 'auth-user-pass-verify',
  'client-connect': 'client-connect',
  'client-disconnect': 'client-disconnect',
  'learn-address': 'learn-address',
};

/** Events that can refuse a client fail closed by default. */
const DENY_BY_DEFAULT = new Set<EventName>(['tls-verify', 'user-pass-verify', 'client-connect']);

/** OpenVPN's option for the client's answer to a CR_TEXT challenge (script_type `client-crresponse`). */
export const CRRESPONSE_OPTION = 'client-crresponse';

/**
 * Modes of the hook client. `ask` (user-pass-verify where a plugin may challenge the client):
 * defer, but hold OpenVPN until the daemon either answers or writes the challenge into
 * `auth_pending_file`, which OpenVPN reads only when the hook returns.
 */
export type HookMode = 'defer' | 'ask' | 'wait' | 'notify';

/** What the hook lines depend on besides the events. */
export interface HookLineOptions {
  /** A plugin asks clients a question while they wait (totp `mode: dynamic`). */
  readonly challenges?: boolean;
  /** A plugin sends waiting clients a pending notice (web-login's `WEB_AUTH::URL`). */
  readonly pendingNotices?: boolean;
}

/** Whether a plugin of this config asks clients while they wait: the enabled totp plugin in `mode: dynamic`. */
export function asksChallenges(plugins: Config['plugins']): boolean {
  return plugins.some((p) => p.use === 'totp' && p.enabled && (p.options as { mode?: unknown } | undefined)?.mode === 'dynamic');
}

/** Whether a plugin of this config tells waiting clients where to log in (`auth_pending_file`): the enabled web-login plugin. */
export function sendsPendingNotices(plugins: Config['plugins']): boolean {
  return plugins.some((p) => p.use === 'web-login' && p.enabled);
}

export function hookMode(event: EventName, hook: HookConfig, o: HookLineOptions = {}): HookMode {
  if (event === 'user-pass-verify') return o.challenges || o.pendingNotices ? 'ask' : 'defer';
  if (event === 'client-connect') return 'defer';
  if (event === 'tls-verify') return 'wait';
  return hook.events[event]?.wait ? 'wait' : 'notify';
}

function onUnreachable(event: EventName, hook: HookConfig): 'deny' | 'allow' {
  return hook.events[event]?.['on-unreachable'] ?? (DENY_BY_DEFAULT.has(event) ? 'deny' : 'allow');
}

/** Quotes a word for OpenVPN's config parser (double quotes, backslash escapes). */
function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function hookCommand(event: EventName, hook: HookConfig, hookPath: string, o: HookLineOptions = {}): string {
  const seconds = Math.max(1, Math.ceil(hook.timeout / 1000));
  if (/\s/.test(hookPath) || /\s/.test(hook.dir)) throw new Error('the hook path and hook.dir must not contain spaces');
  return `${hookPath} ${hook.dir} ${hookMode(event, hook, o)} ${onUnreachable(event, hook)} ${seconds}`;
}

/**
 * The client-crresponse hook: hands the answer over and returns (defer); with the daemon
 * unreachable it fails, and OpenVPN then refuses the client.
 */
export function crresponseCommand(hook: HookConfig, hookPath: string): string {
  const seconds = Math.max(1, Math.ceil(hook.timeout / 1000));
  if (/\s/.test(hookPath) || /\s/.test(hook.dir)) throw new Error('the hook path and hook.dir must not contain spaces');
  return `${hookPath} ${hook.dir} defer deny ${seconds}`;
}

/** Lines for the server config. `events` are the ones some plugin handles. */
export function hookModeLines(hook: HookConfig, events: readonly EventName[], hookPath: string, o: HookLineOptions = {}): string[] {
  const wanted = EVENT_NAMES.filter(
    (e) => (events.includes(e) || e === 'client-connect' || e === 'client-disconnect') && !(e === 'learn-address' && hook['learn-address'] === 'connect'),
  );
  const method = hook.events['user-pass-verify']?.method ?? 'via-file';
  const viaEnv = wanted.includes('user-pass-verify') && method === 'via-env';
  const lines = [
    "# openvpn-flexscript, hook mode. Run flexscriptd as the same user as OpenVPN's `user`:",
    '# OpenVPN creates its deferral files readable by that user only.',
    // level 3 lets OpenVPN put the password into the hook's environment (via-env)
    viaEnv ? 'script-security 3' : 'script-security 2',
  ];
  for (const e of wanted) {
    const cmd = quote(hookCommand(e, hook, hookPath, o));
    lines.push(e === 'user-pass-verify' ? `${HOOK_OPTION[e]} ${cmd} ${method}` : `${HOOK_OPTION[e]} ${cmd}`);
  }
  // a web login is the authentication: clients need send no username and password
  if (o.pendingNotices && wanted.includes('user-pass-verify'))
    lines.push('# clients log in in a browser (web-login): they need send no username and password', 'auth-user-pass-optional');
  // the client's answer to a challenge comes through its own hook
  if (o.challenges && wanted.includes('user-pass-verify')) lines.push(`${CRRESPONSE_OPTION} ${quote(crresponseCommand(hook, hookPath))}`);
  // the live clients a restarted daemon reads back; rewritten every second by OpenVPN
  if (hook['status-file']) {
    lines.push(
      "# OpenVPN creates this file as root, mode 0600: create it first, root's and readable by OpenVPN's group, so the daemon can read it",
      `status ${quote(hook['status-file'])} 1`,
      'status-version 3',
    );
  }
  return lines;
}

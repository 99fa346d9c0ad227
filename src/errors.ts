/**
 * @module errors
 * The registry of error codes: every code the product raises or prints is declared once, with
 * what it means, here or (for codes raised in src/root, which imports nothing outside itself) in
 * src/root/error-codes.ts, merged below. docs/errors.md says what an operator does about each;
 * a test keeps the two in step. An operator can search logs and docs for any code.
 */
import { codesOf, type ErrorCodeInfo, ROOT_ERROR_CODES, ROOT_SETUP_CODES } from './root/error-codes.ts';
// from where the code lives (src/util re-exports it too): util's modules import errors.ts, not the reverse
import { type ConfigProblem, formatProblem } from './root/source-location.ts';

export type { ErrorCodeInfo } from './root/error-codes.ts';
export { type ConfigProblem, formatProblem } from './root/source-location.ts';

/** Codes raised by the daemon, the CLI, the launchers in bin/ and the hook client (hook/flexscript-hook). */
const DAEMON_ERROR_CODES = {
  EVENT_INVALID: { code: 'FXS_EVENT_INVALID', meaning: "an OpenVPN event's environment or arguments are missing or malformed" },
  PLUGIN_FAILED: { code: 'FXS_PLUGIN_FAILED', meaning: 'a plugin handler threw; the client it served is denied' },
  PLUGIN_TIMEOUT: { code: 'FXS_PLUGIN_TIMEOUT', meaning: 'a plugin handler did not finish within its time limit; the client it served is denied' },
  CONFIG_LINE_INVALID: {
    code: 'FXS_CONFIG_LINE_INVALID',
    meaning: 'a config line a plugin returned for OpenVPN would break the file or inject a directive',
  },
  SPOOL_INVALID: { code: 'FXS_SPOOL_INVALID', meaning: 'a spool file handed over by the hook client is malformed or refused' },
  STATE: { code: 'FXS_STATE', meaning: 'state on disk is not as the daemon needs it (runtime directory, store file, a group)' },
  MANAGEMENT_COMMAND: {
    code: 'FXS_MANAGEMENT_COMMAND',
    meaning: "a command for OpenVPN's management interface cannot be encoded within OpenVPN's limits",
  },
  MANAGEMENT_REPLY: { code: 'FXS_MANAGEMENT_REPLY', meaning: "OpenVPN's management interface answered a command with an error" },
  NOT_BUILT: { code: 'FXS_NOT_BUILT', meaning: 'dist/ is missing: bin/flexscript.js and bin/flexscript-root.js run only the built JavaScript', exit: 78 },
  HOOK_UNREACHABLE: {
    code: 'FXS_HOOK_UNREACHABLE',
    meaning: 'the hook client could not hand an event to the daemon, and answered OpenVPN as on-unreachable says',
  },
  HOOK_QUEUED: { code: 'FXS_HOOK_QUEUED', meaning: 'a notify event was spooled while no daemon listened; the daemon reads it when it starts' },
  HOOK_USAGE: { code: 'FXS_HOOK_USAGE', meaning: 'the hook client was started with fewer than its four arguments', exit: 1 },
  CHALLENGE_UNAVAILABLE: {
    code: 'FXS_CHALLENGE_UNAVAILABLE',
    meaning:
      'a plugin asked a client a question (challenge) where its source cannot carry it (hook mode without a waiting user-pass-verify hook); the client is denied',
  },
  TOTP_SECRETS: {
    code: 'FXS_TOTP_SECRETS',
    meaning:
      "the totp plugin's secrets file is refused (owner, mode, a link, a bad line); at start the plugin does not load, later the previous version stays in use",
  },
  WEB_LOGIN_REFUSED: {
    code: 'FXS_WEB_LOGIN_REFUSED',
    meaning:
      'a web login (web-login plugin) did not admit the client: no login in time, a link or callback used twice or expired, another browser or address, the claims or groups not as required, the refresh refused',
  },
  WEB_LOGIN_PROVIDER: {
    code: 'FXS_WEB_LOGIN_PROVIDER',
    meaning: 'the web-login plugin could not reach the OpenID Connect provider or use its answer (discovery, code exchange); the client is denied',
  },
  WEB_LOGIN_LISTEN: {
    code: 'FXS_WEB_LOGIN_LISTEN',
    meaning: "the web-login plugin's callback server cannot listen on its address and port (or read its TLS files); clients needing a web login are denied",
  },
  WEB_LOGIN_STORE: {
    code: 'FXS_WEB_LOGIN_STORE',
    meaning: 'the web-login plugin could not record a login in the shared PostgreSQL store (several daemons behind one callback URL); the client is denied',
  },
  CONSOLE_SETUP: {
    code: 'FXS_CONSOLE_SETUP',
    meaning:
      'flexscript console cannot start: its users file, OIDC client secret file, audit log, TLS files, store or listen address is missing, unreadable or malformed',
  },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;

/** The codes of FlexscriptError, by name (the root pipe's codes are RootErrorCode in src/root/protocol.ts). */
export const ErrorCode = { ...codesOf(ROOT_SETUP_CODES), ...codesOf(DAEMON_ERROR_CODES) };
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Every code the product raises or prints, once each, with its meaning. */
export const ERROR_CODES: readonly ErrorCodeInfo[] = [
  ...Object.values(ROOT_SETUP_CODES),
  ...Object.values(DAEMON_ERROR_CODES),
  ...Object.values(ROOT_ERROR_CODES),
];

export class FlexscriptError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration file (or a plugin's options in it) is invalid; carries every problem found. */
export class ConfigError extends FlexscriptError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super(ErrorCode.CONFIG_INVALID, problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}

/** An OpenVPN event whose environment or arguments are missing or malformed. */
export class EventParseError extends FlexscriptError {
  readonly event: string;
  readonly field: string;
  constructor(event: string, field: string, problem: string) {
    super(ErrorCode.EVENT_INVALID, `${event}: ${field}: ${problem}`);
    this.event = event;
    this.field = field;
  }
}

/** A plugin handler threw or timed out; the client it served is denied. */
export class PluginFailure extends FlexscriptError {
  readonly plugin: string;
  readonly event: string;
  constructor(
    code: typeof ErrorCode.PLUGIN_FAILED | typeof ErrorCode.PLUGIN_TIMEOUT,
    plugin: string,
    event: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, `plugin ${plugin} on ${event}: ${message}`, options);
    this.plugin = plugin;
    this.event = event;
  }
}

/** A config line a plugin tried to send to OpenVPN would break the file or inject a directive. */
export class ConfigLineError extends FlexscriptError {
  constructor(message: string) {
    super(ErrorCode.CONFIG_LINE_INVALID, message);
  }
}

/** A spool file handed over by the hook client is malformed. */
export class SpoolError extends FlexscriptError {
  constructor(message: string) {
    super(ErrorCode.SPOOL_INVALID, message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

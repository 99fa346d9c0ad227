/**
 * @module errors
 * Every error the product raises has a stable `code`, defined here, so an operator can search
 * logs and docs for it.
 */

export const ErrorCode = {
  CONFIG_INVALID: 'FXS_CONFIG_INVALID',
  EVENT_INVALID: 'FXS_EVENT_INVALID',
  PLUGIN_LOAD: 'FXS_PLUGIN_LOAD',
  PLUGIN_FAILED: 'FXS_PLUGIN_FAILED',
  PLUGIN_TIMEOUT: 'FXS_PLUGIN_TIMEOUT',
  CONFIG_LINE_INVALID: 'FXS_CONFIG_LINE_INVALID',
  SPOOL_INVALID: 'FXS_SPOOL_INVALID',
  STATE: 'FXS_STATE',
  /** dist/ is missing (`npm run build`); raised by bin/flexscript.js and bin/flexscript-root.js. */
  NOT_BUILT: 'FXS_NOT_BUILT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class FlexscriptError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem in a configuration file, printed as `FILE:LINE: field: problem`. */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  readonly problem: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.field || '(top level)'}: ${p.problem}`;
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

/** A plugin could not be loaded, or its options are invalid. */
export class PluginLoadError extends FlexscriptError {
  readonly plugin: string;
  constructor(plugin: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.PLUGIN_LOAD, `plugin ${plugin}: ${message}`, options);
    this.plugin = plugin;
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

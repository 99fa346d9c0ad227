/**
 * @module root-log
 * The root stage's log: one JSON object per line on stderr, which the client forwards into the
 * daemon's log. Kept tiny on purpose: the root stage loads as little code as it can.
 */

type RootLogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface RootLog {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  fatal(fields: object, msg: string): void;
}

/** A log writing JSON lines through `write` (stderr in production). */
export function createRootLog(write: (line: string) => void): RootLog {
  const at = (level: RootLogLevel) => (fields: object, msg: string) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, pid: process.pid, msg, ...fields })}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') };
}

/** A log that drops everything (tests). */
export const silentRootLog: RootLog = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

/**
 * @module logger
 * Logs (pino). Library code never writes to the console: it receives a Logger, and each plugin
 * gets a child logger carrying its name. Secrets are redacted by path.
 *
 * Two formats: `json` (one JSON object a line, for log shippers) and `text` (one line a record,
 * `LEVEL [plugin] message key=value`, for people). `auto` writes text to a terminal or to the
 * journal and JSON elsewhere. Under systemd (JOURNAL_STREAM names the stream the logs go to) every
 * line starts with its syslog priority, `<6>` for info, which journald takes as the level
 * (`journalctl -p warning`) and strips from the text.
 */
import { fstatSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFormat = 'auto' | 'text' | 'json';

/** Paths that can hold a password anywhere in a log record. */
const REDACT = ['password', 'env.password', 'event.password', 'event.env.password', '*.password', 'challengeResponse', '*.challengeResponse'];

/** pino's numeric levels, by name and as syslog priorities (RFC 5424: 2 crit, 3 err, 4 warning, 6 info, 7 debug). */
const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SYSLOG: Readonly<Record<number, number>> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

/** Whether the file descriptor is the stream systemd connected to the journal (JOURNAL_STREAM=DEV:INODE). */
function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** A value in a text line: bare when it is a plain word, JSON otherwise (quotes, spaces, newlines escaped). */
function textValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line as a line for people. */
export function textLine(json: string, withTime = true): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const { level, time, msg, plugin, pid: _pid, hostname: _hostname, ...rest } = record;
  const parts = [
    ...(withTime && typeof time === 'string' ? [time] : []),
    (LEVEL_NAMES[level as number] ?? String(level)).padEnd(5),
    ...(plugin === undefined ? [] : [`[${textValue(plugin)}]`]),
    ...(msg === undefined ? [] : [JSON.stringify(msg).slice(1, -1)]),
    ...Object.entries(rest).map(([k, v]) => `${k}=${textValue(v)}`),
  ];
  return parts.join(' ');
}

/** The priority prefix journald reads, for a pino JSON line. */
function syslogPrefix(json: string): string {
  const m = /"level":(\d+)/.exec(json);
  return `<${SYSLOG[Number(m?.[1])] ?? 6}>`;
}

/** Standard output in the chosen format; synchronous, so lines keep their order and none is lost when the process dies. */
function stdoutDestination(format: LogFormat): DestinationStream {
  const journal = isJournalStream(1);
  const text = format === 'text' || (format === 'auto' && (journal || isatty(1)));
  if (!text && !journal) return pino.destination({ dest: 1, sync: true });
  return {
    write(line: string) {
      const body = text ? textLine(line, !journal) : line.trimEnd();
      writeSync(1, `${journal ? syslogPrefix(line) : ''}${body}\n`);
    },
  };
}

export function createLogger(level: LogLevel = 'info', destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, destination ?? stdoutDestination(format));
}

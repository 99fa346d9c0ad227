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
 *
 * Secrets are censored by field name (`censorSecrets`), before a record is written: in the
 * record, in a child logger's fields and in objects put into the message (`%o`). Only a record
 * that holds one is copied; pino's own path-based redaction cloned and re-serialised every field
 * of every record, a fifth of what the daemon allocated per connect.
 */
import { fstatSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type LogFormat = 'auto' | 'text' | 'json';

/** Field names whose value is a secret: at a record's top, or one level down in any field. */
const SECRETS = ['password', 'challengeResponse'] as const;
/** What is written instead of a secret. */
const CENSOR = '[redacted]';

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null;
/** A copy with the same prototype and own fields, to censor without touching the caller's object. */
const copyOf = (v: Fields): Fields => Object.assign(Object.create(Object.getPrototypeOf(v) as object | null) as Fields, v);

/** A field's value with a secret it holds censored (and `event.env.password`); the value itself when it holds none. */
function censorField(key: string, value: unknown): unknown {
  // an error under `err` is censored once its serializer has made it a plain object
  if (!isObject(value) || (key === 'err' && value instanceof Error)) return value;
  let copy: Fields | undefined;
  for (const secret of SECRETS) {
    if (Object.hasOwn(value, secret)) {
      copy ??= copyOf(value);
      copy[secret] = CENSOR;
    }
  }
  // an event logged whole under `event`: its env holds the password as OpenVPN sent it
  if (key === 'event' && isObject(value.env) && Object.hasOwn(value.env, 'password')) {
    copy ??= copyOf(value);
    copy.env = { ...copyOf(value.env), password: CENSOR };
  }
  return copy ?? value;
}

/**
 * A record (or a child logger's fields, or an object in the message) with every secret censored:
 * a top-level `password` or `challengeResponse`, the same names one level down in any field, and
 * `event.env.password`. Returns the record itself when it holds no secret.
 */
function censorSecrets<T>(record: T): T {
  if (!isObject(record)) return record;
  let copy: Fields | undefined;
  for (const key of Object.keys(record)) {
    const value = record[key];
    if (value === undefined) continue;
    const censored = (SECRETS as readonly string[]).includes(key) ? CENSOR : censorField(key, value);
    if (censored !== value) {
      copy ??= copyOf(record);
      copy[key] = censored;
    }
  }
  return (copy ?? record) as T;
}

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
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: censorSecrets },
    serializers: { err: (err: unknown) => censorField('err', pino.stdSerializers.err(err as Error)) },
    hooks: {
      // objects put into the message (`log.info('%o', x)`) are censored like the record
      logMethod(this: PinoLogger, args: unknown[], method: (...a: unknown[]) => void) {
        const first = typeof args[0] === 'string' ? 1 : 2;
        for (let i = first; i < args.length; i++) if (isObject(args[i])) args[i] = censorSecrets(args[i]);
        method.apply(this, args);
      },
    },
  };
  return censorChildFields(pino(options, destination ?? stdoutDestination(format)));
}

/**
 * A child logger's own fields are censored too: pino formats them once, when the child is made.
 * Set on the root, this covers every descendant (a child's prototype is its parent).
 */
function censorChildFields(logger: PinoLogger): PinoLogger {
  const { child, setBindings } = logger;
  logger.child = function (this: PinoLogger, bindings: Fields, options?: object) {
    return child.call(this, censorSecrets(bindings), options);
  } as PinoLogger['child'];
  logger.setBindings = function (this: PinoLogger, bindings: Fields) {
    setBindings.call(this, censorSecrets(bindings));
  };
  return logger;
}

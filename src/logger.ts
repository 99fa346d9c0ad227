/**
 * @module logger
 * Structured JSON logs (pino). Library code never writes to the console: it receives a Logger,
 * and each plugin gets a child logger carrying its name. Secrets are redacted by path.
 */
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Paths that can hold a password anywhere in a log record. */
const REDACT = ['password', 'env.password', 'event.password', 'event.env.password', '*.password', 'challengeResponse', '*.challengeResponse'];

export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  // Synchronous writes: log lines keep their order and none is lost when the process dies.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

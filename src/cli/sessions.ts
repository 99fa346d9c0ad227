/**
 * @module sessions
 * `flexscript sessions`: session history from the accounting store, newest first, with
 * filters by user (common name or username), time and instance; a table or `--json`.
 */
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { EXIT } from './exit-codes.ts';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { openStore } from '../store/open-store.ts';
import type { SessionQuery, SessionRecord } from '../store/store.ts';
import { tableName, tableTime, tableTimeZone, terminalJson, textTable } from './text-table.ts';

export interface SessionsOptions {
  readonly config: string;
  readonly user?: string;
  readonly instance?: string;
  readonly since?: string;
  readonly until?: string;
  readonly open?: boolean;
  readonly limit?: string;
  readonly json?: boolean;
}

/** `2h`, `30m`, `7d` (ago), or an ISO date/time. */
export function parseWhen(text: string, now = Date.now()): number {
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (rel) return now - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`${JSON.stringify(text)} is not a time: give e.g. 2h, 7d or 2026-11-28T10:00`);
  return t;
}

function duration(r: SessionRecord, now: number): string {
  const s = r.duration ?? Math.round((now - r.startedAt) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h > 0 ? `${h}h` : ''}${String(m).padStart(h > 0 ? 2 : 1, '0')}m${String(s % 60).padStart(2, '0')}s`;
}

export function sessionsTable(rows: readonly SessionRecord[], now = Date.now()): string {
  return textTable(
    ['INSTANCE', 'NAME', 'USER', 'VPN ADDRESS', 'REAL ADDRESS', `START (${tableTimeZone()})`, 'END', 'DURATION', 'BYTES IN', 'BYTES OUT', 'ENDED BY'],
    rows.map((r) => [
      r.instance,
      tableName(r.commonName),
      r.username === undefined ? '-' : tableName(r.username),
      [r.vpnAddress, r.vpnAddress6].filter(Boolean).join(' ') || '-',
      r.realAddress ? `${r.realAddress}${r.realPort ? `:${r.realPort}` : ''}` : '-',
      tableTime(r.startedAt),
      r.endedAt === undefined ? 'connected' : tableTime(r.endedAt),
      duration(r, now),
      r.bytesIn === undefined ? '-' : String(r.bytesIn),
      r.bytesOut === undefined ? '-' : String(r.bytesOut),
      r.endReason ?? '-',
    ]),
  );
}

export async function sessionsCommand(o: SessionsOptions): Promise<number> {
  try {
    const { config } = await loadConfig(o.config);
    if (!config.store) throw new Error(`${o.config} has no store: section; sessions are recorded by the accounting plugin into it`);
    const query: SessionQuery = {
      user: o.user,
      instance: o.instance,
      since: o.since === undefined ? undefined : parseWhen(o.since),
      until: o.until === undefined ? undefined : parseWhen(o.until),
      openOnly: o.open ?? false,
      limit: o.limit === undefined ? 100 : Number.parseInt(o.limit, 10),
    };
    if (query.limit !== undefined && !(query.limit > 0)) throw new Error('--limit must be a positive number');
    // read-only, and only an existing file: run as root, creating it would lock the daemon out
    const store =
      config.store.sqlite === undefined
        ? await openStore(config.store, createLogger('silent'))
        : new (await import('../store/sqlite-store.ts')).SqliteStore(config.store.sqlite, { readOnly: true });
    try {
      const rows = await store.sessions(query);
      process.stdout.write(`${o.json ? terminalJson(rows) : sessionsTable(rows)}\n`);
    } finally {
      await store.close();
    }
    return 0;
  } catch (err) {
    process.stderr.write(`flexscript sessions: ${err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err)}\n`);
    return err instanceof ConfigError ? EXIT.config : EXIT.failure;
  }
}

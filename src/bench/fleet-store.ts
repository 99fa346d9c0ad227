/**
 * @module fleet-store
 * The store the fleet benchmark's daemon records into, and what the benchmark reads back from it:
 * a SQLite file on disk (so commits cost real fsyncs), or a throwaway PostgreSQL server
 * (src/lab/postgres.ts) with its committed transactions (pg_stat_database) as a second count of
 * the daemon's work.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownedDir } from '../lab/daemon-process.ts';

/** How the records ended up, after every client left. */
export interface RecordCounts {
  readonly records: number;
  readonly open: number;
  readonly closedByDisconnect: number;
  /** Closed otherwise: found gone after a rebuild, or disconnected by a plugin. */
  readonly closedAsMissed: number;
  readonly closedAsKilled: number;
  readonly withBytes: number;
}

export interface FleetStore {
  /** The daemon's `store:` section. */
  readonly yaml: string;
  /** PostgreSQL: transactions committed in the database so far; SQLite: undefined. */
  transactions(): Promise<number | undefined>;
  counts(): Promise<RecordCounts>;
}

const COUNTS = `SELECT COUNT(*) AS records,
  COUNT(*) FILTER (WHERE ended_at IS NULL) AS open,
  COUNT(*) FILTER (WHERE end_reason = 'disconnect') AS "closedByDisconnect",
  COUNT(*) FILTER (WHERE end_reason = 'missed') AS "closedAsMissed",
  COUNT(*) FILTER (WHERE end_reason = 'killed') AS "closedAsKilled",
  COUNT(*) FILTER (WHERE bytes_in > 0 AND bytes_out > 0) AS "withBytes"
  FROM sessions`;

const numbers = (row: Record<string, unknown>): RecordCounts => ({
  records: Number(row.records),
  open: Number(row.open),
  closedByDisconnect: Number(row.closedByDisconnect),
  closedAsMissed: Number(row.closedAsMissed),
  closedAsKilled: Number(row.closedAsKilled),
  withBytes: Number(row.withBytes),
});

export async function openFleetStore(
  kind: 'sqlite' | 'postgres',
  o: {
    readonly pool: number;
    readonly track: (step: () => unknown) => void;
    /** A synchronous clean-up step, run also when the benchmark is stopped by a signal. */
    readonly sync: (step: () => void) => void;
  },
): Promise<FleetStore> {
  if (kind === 'sqlite') {
    const dir = ownedDir(mkdtempSync(join(tmpdir(), 'flexscript-fleet-db-')));
    if (!process.env.FXS_KEEP) o.sync(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'accounting.db');
    return {
      yaml: `store:\n  sqlite: ${file}`,
      transactions: async () => undefined,
      counts: async () => {
        const { default: Database } = await import('better-sqlite3');
        const db = new Database(file, { readonly: true, fileMustExist: true });
        try {
          return numbers(db.prepare(COUNTS).get() as Record<string, unknown>);
        } finally {
          db.close();
        }
      },
    };
  }
  const { postgresBin, startPostgres } = await import('../lab/postgres.ts');
  if (!postgresBin()) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const server = await startPostgres((step) => o.track(step));
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.user,
    password: readFileSync(server.passwordFile, 'utf8').split('\n')[0],
  });
  await client.connect();
  // tracked after the server: ends before the server stops
  o.track(() => client.end());
  return {
    yaml: [...server.yaml, `    pool: ${o.pool}`].join('\n'),
    transactions: async () => {
      // statistics reach the view within a second; read what the server has flushed so far
      await client.query('SELECT pg_stat_clear_snapshot()');
      const r = await client.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1', [server.database]);
      return Number(r.rows[0]?.n ?? 0);
    },
    counts: async () => numbers((await client.query(COUNTS)).rows[0] as Record<string, unknown>),
  };
}

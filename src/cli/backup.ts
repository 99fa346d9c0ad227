/**
 * @module backup
 * `flexscript backup --to FILE`: a consistent copy of the SQLite store, made with SQLite's online
 * backup while the daemon keeps running. A PostgreSQL store is backed up with PostgreSQL's own
 * tools (pg_dump); the command says how.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { EXIT } from './exit-codes.ts';

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export interface BackupOptions {
  readonly config: string;
  readonly to: string;
  readonly force?: boolean;
}

export async function backupCommand(o: BackupOptions): Promise<number> {
  try {
    const { config } = await loadConfig(o.config);
    if (!config.store) throw new Error(`${o.config} has no store: section; there is nothing to back up`);
    const pg = config.store.postgres;
    if (pg !== undefined)
      throw new Error(
        `the store is PostgreSQL: back it up with pg_dump, e.g. pg_dump -h ${pg.host} -p ${pg.port} -U ${pg.user} -Fc -f ${o.to} ${pg.database} (restore with pg_restore)`,
      );
    const file = config.store.sqlite!;
    const to = resolve(o.to);
    if (to === resolve(file)) throw new Error(`--to ${o.to} is the store itself`);
    if (existsSync(to) && !o.force) throw new Error(`${to} exists; give another file, or --force to replace it`);
    const { SqliteStore } = await import('../store/sqlite-store.ts');
    // read-only, and only an existing store: the backup never creates or changes it
    const store = new SqliteStore(file, { readOnly: true });
    try {
      const n = await store.backup(to);
      process.stdout.write(`backed up ${file} to ${to}: ${plural(n.sessions, 'session')} (${n.open} open), ${plural(n.denials, 'denial')}\n`);
    } finally {
      await store.close();
    }
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`flexscript backup: ${err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err)}\n`);
    return err instanceof ConfigError ? EXIT.config : EXIT.failure;
  }
}

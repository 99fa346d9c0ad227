/**
 * Both store backends for suites that must behave the same on each: SQLite (a temporary file)
 * and PostgreSQL (a real server started for the test, skipped where it is not installed). Each
 * opens a store and can open another on the same data (another daemon, or the same after a
 * restart); everything opened is closed, and the file removed, when the test ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { postgresBin, startPostgres } from './postgres.ts';

export type OpenStore = (t: TestContext) => Promise<{ store: Store; reopen(): Promise<Store> }>;

/** [name, open, skip reason or false] for each backend. */
export const STORE_BACKENDS: readonly (readonly [string, OpenStore, string | false])[] = [
  [
    'sqlite',
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'fxs-store-'));
      const opened: Store[] = [];
      t.after(async () => {
        for (const s of opened) await s.close();
        await rm(dir, { recursive: true, force: true });
      });
      const open = async () => {
        const store = new SqliteStore(join(dir, 'a.db'));
        opened.push(store);
        return store;
      };
      return { store: await open(), reopen: open };
    },
    false,
  ],
  [
    'postgres',
    async (t) => {
      const pg = await startPostgres(t);
      const opened: Store[] = [];
      t.after(async () => {
        for (const s of opened) await s.close();
      });
      const config = { host: pg.host, port: pg.port, database: pg.database, user: pg.user, 'password-file': pg.passwordFile, pool: 2 };
      const open = async () => {
        const store = await PostgresStore.open(config);
        opened.push(store);
        return store;
      };
      return { store: await open(), reopen: open };
    },
    postgresBin() ? false : 'PostgreSQL is not installed',
  ],
];

/**
 * @module open-store
 * Opens the store the config names; each backend is loaded only when used.
 */
import type { Logger } from '../logger.ts';
import type { Store } from './store.ts';
import type { StoreConfig } from './store-config.ts';

export async function openStore(config: StoreConfig, log: Logger): Promise<Store> {
  if (config.postgres) {
    const { PostgresStore } = await import('./postgres-store.ts');
    const store = await PostgresStore.open(config.postgres);
    log.info({ host: config.postgres.host, database: config.postgres.database }, 'store: PostgreSQL');
    return store;
  }
  const { SqliteStore } = await import('./sqlite-store.ts');
  const store = new SqliteStore(config.sqlite!);
  log.info({ file: config.sqlite }, 'store: SQLite');
  return store;
}

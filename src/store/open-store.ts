/**
 * @module open-store
 * Opens the store named by the config.
 */
import type { Logger } from '../logger.ts';
import type { Store } from './store.ts';
import type { StoreConfig } from './store-config.ts';

export async function openStore(_config: StoreConfig, _log: Logger): Promise<Store> {
  throw new Error('no store backend is configured');
}

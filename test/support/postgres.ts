/**
 * A throwaway PostgreSQL server for a test (src/lab/postgres.ts), stopped and removed after the
 * test, also when it fails.
 */
import type { TestContext } from 'node:test';
import { startPostgres as startLabPostgres, type PostgresOptions, type PostgresServer } from '../../src/lab/postgres.ts';

export { postgresBin, type PostgresServer } from '../../src/lab/postgres.ts';

export function startPostgres(t: TestContext, o: PostgresOptions = {}): Promise<PostgresServer> {
  return startLabPostgres((step) => t.after(step), o);
}

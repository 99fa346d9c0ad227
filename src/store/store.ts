/**
 * @module store
 * The accounting store as plugins and the CLI see it: sessions and denials, durable before the
 * event they record is answered. SQLite is the embedded default; PostgreSQL lets several
 * servers share one store.
 */

export interface Store {
  /** Which backend this is, for logs and `flexscript check`. */
  readonly kind: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

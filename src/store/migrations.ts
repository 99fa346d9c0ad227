/**
 * @module migrations
 * The store's schema, as numbered migrations applied once each, in order, each in its own
 * transaction, recorded in `schema_migrations`. Never edit a released migration: add one.
 * Times are integer milliseconds since the epoch, the same in both backends.
 */

type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  readonly version: number;
  readonly name: string;
  statements(dialect: Dialect): string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions and denials',
    statements: (d) => [
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        common_name TEXT NOT NULL,
        username TEXT,
        real_address TEXT,
        real_port INTEGER,
        vpn_address TEXT,
        vpn_address6 TEXT,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        duration INTEGER,
        bytes_in BIGINT,
        bytes_out BIGINT,
        end_reason TEXT
      )`,
      'CREATE INDEX sessions_open ON sessions (instance) WHERE ended_at IS NULL',
      'CREATE INDEX sessions_common_name ON sessions (common_name, started_at)',
      'CREATE INDEX sessions_username ON sessions (username, started_at)',
      'CREATE INDEX sessions_started ON sessions (started_at)',
      `CREATE TABLE denials (
        id ${d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY'},
        at BIGINT NOT NULL,
        instance TEXT NOT NULL,
        event TEXT NOT NULL,
        common_name TEXT,
        username TEXT,
        real_address TEXT,
        real_port INTEGER,
        reason TEXT NOT NULL,
        plugin TEXT
      )`,
      'CREATE INDEX denials_at ON denials (at)',
    ],
  },
  {
    version: 2,
    name: 'kill requests',
    statements: (d) => [
      // a daemon asks the daemon serving another instance to disconnect one of its clients
      `CREATE TABLE kill_requests (
        id ${d === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY'},
        session_id TEXT NOT NULL,
        instance TEXT NOT NULL,
        common_name TEXT NOT NULL,
        real_address TEXT,
        real_port INTEGER,
        reason TEXT NOT NULL,
        requested_at BIGINT NOT NULL
      )`,
      'CREATE INDEX kill_requests_instance ON kill_requests (instance)',
      'CREATE INDEX sessions_user_open ON sessions ((COALESCE(username, common_name))) WHERE ended_at IS NULL',
    ],
  },
  {
    version: 3,
    name: 'session limits count usernames and common names apart',
    statements: () => [
      // a verified username and a common name are separate keys: a client with a username
      // counts against that username, one without against its common name (see limitKeyOf)
      'DROP INDEX IF EXISTS sessions_user_open',
      'CREATE INDEX sessions_username_open ON sessions (username) WHERE ended_at IS NULL AND username IS NOT NULL',
      'CREATE INDEX sessions_common_name_open ON sessions (common_name) WHERE ended_at IS NULL AND username IS NULL',
    ],
  },
  {
    version: 4,
    name: 'the groups of a session',
    // a JSON array of the client's group names (free text); NULL when it is in none
    statements: () => ['ALTER TABLE sessions ADD COLUMN client_groups TEXT'],
  },
  {
    version: 5,
    name: 'web logins in progress',
    // shared by the daemons behind one callback URL (see web-logins.ts); rows live minutes
    statements: () => [
      `CREATE TABLE web_logins (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        instance TEXT NOT NULL,
        common_name TEXT NOT NULL,
        real_address TEXT,
        real_port INTEGER,
        same_address INTEGER NOT NULL,
        expires_at BIGINT NOT NULL,
        step TEXT NOT NULL,
        state TEXT,
        nonce TEXT,
        verifier TEXT,
        browser TEXT,
        outcome TEXT
      )`,
      'CREATE UNIQUE INDEX web_logins_state ON web_logins (state)',
      'CREATE INDEX web_logins_expires ON web_logins (expires_at)',
    ],
  },
];

export const MIGRATIONS_TABLE = 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)';

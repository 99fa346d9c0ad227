/**
 * @module store-config
 * The `store:` section of flexscript.yaml: SQLite (embedded, one server) or PostgreSQL (several
 * servers sharing sessions, limits and accounting). Passwords never sit in this file.
 */
import { z } from 'zod';
import { postgresSecrets, postgresSslSchema } from './postgres-tls.ts';

const postgres = z
  .object({
    host: z.string().min(1).default('localhost'),
    port: z.number().int().min(1).max(65535).default(5432),
    database: z.string().min(1),
    user: z.string().min(1),
    /** File whose first line is the password (0600, or 0640 owned by root; see postgres-tls). */
    'password-file': z.string().startsWith('/', 'must be an absolute path').optional(),
    /** TLS to the server, and a client certificate (see postgres-tls). */
    ssl: postgresSslSchema.optional(),
    /** Connections in the pool. */
    pool: z.number().int().min(1).max(100).default(4),
  })
  .strict()
  // the files are read at load: a missing, unreadable or too open one is a FILE:LINE problem
  .superRefine((p, ctx) => {
    for (const problem of postgresSecrets(p).problems) ctx.addIssue({ code: 'custom', path: [...problem.path], message: problem.message });
  });

export const storeConfigSchema = z
  .object({
    /** SQLite database file (the embedded default); its folder must be writable by the daemon. */
    sqlite: z.string().startsWith('/', 'must be an absolute path').optional(),
    postgres: postgres.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.sqlite === undefined && s.postgres === undefined) ctx.addIssue({ code: 'custom', path: ['sqlite'], message: 'give sqlite (a file) or postgres' });
    if (s.sqlite !== undefined && s.postgres !== undefined) ctx.addIssue({ code: 'custom', path: ['postgres'], message: 'give sqlite or postgres, not both' });
  });

export type StoreConfig = z.output<typeof storeConfigSchema>;
export type PostgresConfig = NonNullable<StoreConfig['postgres']>;

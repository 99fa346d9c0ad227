/**
 * @module postgres-store
 * The shared store: several OpenVPN servers (and their daemons) record into one PostgreSQL
 * database. Each write is its own committed statement; migrations run under an advisory lock,
 * so daemons starting at the same time apply each one once.
 */
import pg from 'pg';
import { ErrorCode, FlexscriptError } from '../errors.ts';
import { MIGRATIONS, MIGRATIONS_TABLE } from './migrations.ts';
import { denialFromRow, groupsColumn, killRequestFromRow, sessionFromRow, type Row } from './rows.ts';
import {
  PRUNE_BATCH,
  PRUNE_DENIALS_WHERE,
  PRUNE_SESSIONS_WHERE,
  SUPERSEDE_SET,
  limitKeyOf,
  limitKeyWhere,
  type ClientConnection,
  type DenialRecord,
  type KillRequest,
  type PruneCounts,
  type PruneOptions,
  type SessionEnd,
  type SessionLimit,
  type SessionQuery,
  type SessionRecord,
  type SessionStart,
  type Store,
  type StoreStats,
} from './store.ts';
import { postgresSecrets } from './postgres-tls.ts';
import type { PostgresConfig } from './store-config.ts';
import { PostgresWebLogins } from './web-logins-postgres.ts';

/** Any constant: names the advisory lock that serialises migrations. */
const MIGRATION_LOCK = 0x66787331;

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  #statements = 0;
  readonly webLogins: PostgresWebLogins;
  private constructor(readonly pool: pg.Pool) {
    this.webLogins = new PostgresWebLogins(pool);
    // every statement goes through a pooled client's query, pool.query's included: count it there
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        this.#statements++;
        return query(...args);
      };
    });
  }

  stats(): StoreStats {
    return { roundTrips: this.#statements };
  }

  static async open(config: PostgresConfig): Promise<PostgresStore> {
    // checked at load already; read again here, as the files are what the connections use
    const { secrets, problems } = postgresSecrets(config);
    if (!secrets) throw new FlexscriptError(ErrorCode.CONFIG_INVALID, problems.map((p) => `store.postgres.${p.path.join('.')}: ${p.message}`).join('\n'));
    // ssl false when not configured: PGSSLMODE and friends in the environment do not decide
    const pool = new pg.Pool({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      password: secrets.password,
      ssl: secrets.ssl,
      max: config.pool,
    });
    // an idle connection that breaks is replaced by the pool; it must not crash the daemon
    pool.on('error', () => {});
    const store = new PostgresStore(pool);
    try {
      await store.#migrate();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  async #migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(MIGRATIONS_TABLE);
      const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        for (const sql of m.statements('postgres')) await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async openSession(s: SessionStart, client: pg.Pool | pg.PoolClient = this.pool): Promise<void> {
    // one statement, so one transaction: an open record of the same connection ends as this one starts
    await client.query(
      `WITH superseded AS (
         UPDATE sessions SET ${SUPERSEDE_SET.replaceAll('$start', '$9')}
         WHERE ended_at IS NULL AND id <> $1 AND instance = $2 AND common_name = $3 AND real_address = $5 AND real_port = $6
       )
       INSERT INTO sessions (id, instance, common_name, username, real_address, real_port, vpn_address, vpn_address6, started_at, client_groups)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
      [
        s.id,
        s.instance,
        s.commonName,
        s.username ?? null,
        s.realAddress ?? null,
        s.realPort ?? null,
        s.vpnAddress ?? null,
        s.vpnAddress6 ?? null,
        s.startedAt,
        groupsColumn(s.groups),
      ],
    );
  }

  async claimSession(s: SessionStart, limit: SessionLimit): Promise<{ recorded: boolean; others: SessionRecord[] }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // one lock per limit key, held to the commit: two connects of a user, on any server, take turns
      const key = limitKeyOf(s);
      await client.query("SELECT pg_advisory_xact_lock(hashtext('flexscript-' || $1 || ':' || $2))", [key.kind, key.name]);
      // a record of this very connection is over, and must not count against the limit: ended
      // and left out in one round trip (the SELECT sees the rows as they were before the UPDATE)
      const others = (
        await client.query<Row>(
          `WITH superseded AS (
             UPDATE sessions SET ${SUPERSEDE_SET.replaceAll('$start', '$3')}
             WHERE ended_at IS NULL AND id <> $2 AND instance = $4 AND common_name = $5 AND real_address = $6 AND real_port = $7
             RETURNING id
           )
           SELECT * FROM sessions WHERE ${limitKeyWhere(key.kind).replace('$key', '$1').replace('$id', '$2')} AND id NOT IN (SELECT id FROM superseded)
           ORDER BY started_at, id`,
          [key.name, s.id, s.startedAt, s.instance, s.commonName, s.realAddress ?? null, s.realPort ?? null],
        )
      ).rows.map(sessionFromRow);
      const recorded = !(limit.refuse && others.length >= limit.max);
      if (recorded) await this.openSession(s, client);
      await client.query('COMMIT');
      return { recorded, others };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async forgetSession(id: string): Promise<void> {
    await this.pool.query('DELETE FROM sessions WHERE id = $1 AND ended_at IS NULL', [id]);
  }

  async markKilled(id: string, killed = true): Promise<void> {
    await this.pool.query('UPDATE sessions SET end_reason = $1 WHERE id = $2 AND ended_at IS NULL', [killed ? 'killed' : null, id]);
  }

  async requestKill(r: KillRequest): Promise<void> {
    await this.pool.query(
      'INSERT INTO kill_requests (session_id, instance, common_name, real_address, real_port, reason, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [r.sessionId, r.instance, r.commonName, r.realAddress ?? null, r.realPort ?? null, r.reason, r.requestedAt],
    );
  }

  async takeKillRequests(instances: readonly string[], since: number): Promise<KillRequest[]> {
    if (instances.length === 0) return [];
    await this.pool.query('DELETE FROM kill_requests WHERE requested_at < $1', [since]);
    const r = await this.pool.query<Row>('DELETE FROM kill_requests WHERE instance = ANY($1) RETURNING *', [[...instances]]);
    return r.rows.map(killRequestFromRow);
  }

  async closeSession(id: string | undefined, c: ClientConnection | undefined, end: SessionEnd): Promise<boolean> {
    // a session marked killed keeps that as how it ended
    const set = `ended_at = $1, duration = $2, bytes_in = $3, bytes_out = $4, end_reason = COALESCE(end_reason, $5),
       vpn_address = COALESCE($6, vpn_address), vpn_address6 = COALESCE($7, vpn_address6)`;
    const values = [end.endedAt, end.duration, end.bytesIn, end.bytesOut, end.reason, end.vpnAddress ?? null, end.vpnAddress6 ?? null];
    if (id !== undefined && ((await this.pool.query(`UPDATE sessions SET ${set} WHERE id = $8 AND ended_at IS NULL`, [...values, id])).rowCount ?? 0) > 0)
      return true;
    if (c === undefined) return false;
    const r = await this.pool.query(
      `UPDATE sessions SET ${set} WHERE id = (SELECT id FROM sessions WHERE ended_at IS NULL AND instance = $8 AND common_name = $9
         AND real_address IS NOT DISTINCT FROM $10 AND real_port IS NOT DISTINCT FROM $11 ORDER BY started_at DESC LIMIT 1)`,
      [...values, c.instance, c.commonName, c.realAddress ?? null, c.realPort ?? null],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async setGroups(c: ClientConnection, groups: readonly string[]): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE sessions SET client_groups = $1 WHERE id = (SELECT id FROM sessions WHERE ended_at IS NULL AND instance = $2 AND common_name = $3
         AND real_address IS NOT DISTINCT FROM $4 AND real_port IS NOT DISTINCT FROM $5 ORDER BY started_at DESC LIMIT 1)`,
      [groupsColumn(groups), c.instance, c.commonName, c.realAddress ?? null, c.realPort ?? null],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async setAddresses(id: string, a: { readonly vpnAddress?: string; readonly vpnAddress6?: string }): Promise<void> {
    await this.pool.query('UPDATE sessions SET vpn_address = COALESCE($1, vpn_address), vpn_address6 = COALESCE($2, vpn_address6) WHERE id = $3', [
      a.vpnAddress ?? null,
      a.vpnAddress6 ?? null,
      id,
    ]);
  }

  async recordDenial(d: DenialRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO denials (at, instance, event, common_name, username, real_address, real_port, reason, plugin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [d.at, d.instance, d.event, d.commonName ?? null, d.username ?? null, d.realAddress ?? null, d.realPort ?? null, d.reason, d.plugin ?? null],
    );
  }

  async openSessions(instance: string): Promise<SessionRecord[]> {
    return (await this.pool.query<Row>('SELECT * FROM sessions WHERE ended_at IS NULL AND instance = $1 ORDER BY started_at', [instance])).rows.map(
      sessionFromRow,
    );
  }

  async sessions(q: SessionQuery): Promise<SessionRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    // push returns the new length: the placeholder's number
    const param = (v: unknown) => `$${values.push(v)}`;
    if (q.user !== undefined) {
      const p = param(q.user);
      where.push(`(common_name = ${p} OR username = ${p})`);
    }
    if (q.instance !== undefined) where.push(`instance = ${param(q.instance)}`);
    if (q.since !== undefined) where.push(`(ended_at IS NULL OR ended_at >= ${param(q.since)})`);
    if (q.until !== undefined) where.push(`started_at < ${param(q.until)}`);
    if (q.openOnly) where.push('ended_at IS NULL');
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC LIMIT ${Math.max(1, Math.min(q.limit ?? 1000, 100_000))}`;
    return (await this.pool.query<Row>(sql, values)).rows.map(sessionFromRow);
  }

  async denials(q: { readonly since?: number; readonly instance?: string; readonly limit?: number }): Promise<DenialRecord[]> {
    const r = await this.pool.query<Row>(
      `SELECT * FROM denials WHERE at >= $1 AND ($2::text IS NULL OR instance = $2) ORDER BY at DESC LIMIT ${Math.max(1, Math.min(q.limit ?? 1000, 100_000))}`,
      [q.since ?? 0, q.instance ?? null],
    );
    return r.rows.map(denialFromRow);
  }

  async countOpen(user: string): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL AND (common_name = $1 OR username = $1)', [user]);
    return Number(r.rows[0]?.n ?? 0);
  }

  async prune(before: number, options: PruneOptions = {}): Promise<PruneCounts> {
    const counts = { sessions: 0, denials: 0 };
    for (const [table, where] of [
      ['sessions', PRUNE_SESSIONS_WHERE],
      ['denials', PRUNE_DENIALS_WHERE],
    ] as const) {
      const sql = where.replaceAll('$before', '$1');
      if (options.dryRun) {
        counts[table] = Number((await this.pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${sql}`, [before])).rows[0]?.n ?? 0);
        continue;
      }
      const batch = options.batch ?? PRUNE_BATCH;
      // one short transaction per batch: a long one would hold back vacuum and replication
      let removed: number;
      do {
        removed = (await this.pool.query(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${sql} LIMIT $2)`, [before, batch])).rowCount ?? 0;
        counts[table] += removed;
      } while (removed === batch);
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

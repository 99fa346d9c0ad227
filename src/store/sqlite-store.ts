/**
 * @module sqlite-store
 * The embedded store: one SQLite file (better-sqlite3). WAL with synchronous=FULL, so a commit
 * is on disk before a write's promise resolves. better-sqlite3 is synchronous, and each commit
 * waits for an fsync on the event loop (about a millisecond, more on a busy disk), so writes
 * asked for in the same turn of the event loop share one transaction and one fsync: under a
 * reconnect storm, hundreds of connects cost a few commits instead of one each. Each write runs
 * in its own savepoint, so one failing write fails alone.
 */
import Database from 'better-sqlite3';
import { closeSync, openSync, renameSync, rmSync } from 'node:fs';
import { MIGRATIONS, MIGRATIONS_TABLE } from './migrations.ts';
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
import { denialFromRow, groupsColumn, killRequestFromRow, sessionFromRow, type Row } from './rows.ts';
import { openStoreFile, openStoreFileReadOnly } from './sqlite-file.ts';
import { SqliteWebLogins } from './web-logins-sqlite.ts';

interface QueuedWrite {
  readonly work: () => unknown;
  readonly resolve: (value: never) => void;
  readonly reject: (err: unknown) => void;
}

/** A session's named parameters: NULL for what it lacks, its groups as stored. */
function sessionRow(s: SessionStart) {
  const { groups, ...rest } = s;
  return { username: null, realAddress: null, realPort: null, vpnAddress: null, vpnAddress6: null, ...rest, clientGroups: groupsColumn(groups) };
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #supersede: Database.Statement;
  readonly #closeById: Database.Statement;
  readonly #closeByConnection: Database.Statement;
  readonly #denial: Database.Statement;
  readonly #setAddresses: Database.Statement;
  readonly #setGroups: Database.Statement;
  /** Each write's savepoint inside the group commit, prepared once (a transaction function per write costs more). */
  readonly #savepoint: { readonly begin: Database.Statement; readonly release: Database.Statement; readonly undo: Database.Statement };
  /** The open sessions of a limit key, by kind (claimSession). */
  readonly #others: Record<'username' | 'common-name', Database.Statement>;
  #queue: QueuedWrite[] = [];
  #flushing: NodeJS.Immediate | undefined;
  #commits = 0;
  readonly webLogins: SqliteWebLogins;

  /** `readOnly` (for `flexscript sessions`): the store must exist and is neither created, migrated nor written. */
  constructor(file: string, options: { readonly readOnly?: boolean } = {}) {
    this.#db = options.readOnly ? openStoreFileReadOnly(file) : openStoreFile(file);
    if (!options.readOnly) {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
    }
    // another daemon or `flexscript sessions` may hold the write lock for a moment
    this.#db.pragma('busy_timeout = 5000');
    if (!options.readOnly) this.#migrate();
    this.webLogins = new SqliteWebLogins(this.#db, (work) => this.#write(work));
    this.#insert = this.#db.prepare(
      `INSERT INTO sessions (id, instance, common_name, username, real_address, real_port, vpn_address, vpn_address6, started_at, client_groups)
       VALUES (@id, @instance, @commonName, @username, @realAddress, @realPort, @vpnAddress, @vpnAddress6, @startedAt, @clientGroups) ON CONFLICT (id) DO NOTHING`,
    );
    this.#supersede = this.#db.prepare(`UPDATE sessions SET ${SUPERSEDE_SET.replaceAll('$start', '@startedAt').replaceAll('GREATEST', 'MAX')}
       WHERE ended_at IS NULL AND id <> @id AND instance = @instance AND common_name = @commonName AND real_address = @realAddress AND real_port = @realPort`);
    // a session marked killed keeps that as how it ended
    const set = `ended_at = @endedAt, duration = @duration, bytes_in = @bytesIn, bytes_out = @bytesOut, end_reason = COALESCE(end_reason, @reason),
       vpn_address = COALESCE(@vpnAddress, vpn_address), vpn_address6 = COALESCE(@vpnAddress6, vpn_address6)`;
    this.#closeById = this.#db.prepare(`UPDATE sessions SET ${set} WHERE id = @id AND ended_at IS NULL`);
    // the newest open session of that connection: a daemon restart gave it a new id
    this.#closeByConnection = this.#db.prepare(
      `UPDATE sessions SET ${set} WHERE id = (SELECT id FROM sessions WHERE ended_at IS NULL AND instance = @instance AND common_name = @commonName
         AND real_address IS @realAddress AND real_port IS @realPort ORDER BY started_at DESC LIMIT 1)`,
    );
    // every learn-address add runs it; addresses the record holds already change and write nothing
    this.#setAddresses = this.#db.prepare(
      `UPDATE sessions SET vpn_address = COALESCE(@v4, vpn_address), vpn_address6 = COALESCE(@v6, vpn_address6)
       WHERE id = @id AND (vpn_address IS NOT COALESCE(@v4, vpn_address) OR vpn_address6 IS NOT COALESCE(@v6, vpn_address6))`,
    );
    this.#setGroups = this.#db.prepare(
      `UPDATE sessions SET client_groups = @clientGroups WHERE id = (SELECT id FROM sessions WHERE ended_at IS NULL AND instance = @instance
         AND common_name = @commonName AND real_address IS @realAddress AND real_port IS @realPort ORDER BY started_at DESC LIMIT 1)`,
    );
    const others = (kind: 'username' | 'common-name') =>
      this.#db.prepare(`SELECT * FROM sessions WHERE ${limitKeyWhere(kind).replace('$key', '@key').replace('$id', '@id')} ORDER BY started_at, id`);
    this.#others = { username: others('username'), 'common-name': others('common-name') };
    this.#savepoint = {
      begin: this.#db.prepare('SAVEPOINT fxs_write'),
      release: this.#db.prepare('RELEASE fxs_write'),
      undo: this.#db.prepare('ROLLBACK TO fxs_write'),
    };
    this.#denial = this.#db.prepare(
      `INSERT INTO denials (at, instance, event, common_name, username, real_address, real_port, reason, plugin)
       VALUES (@at, @instance, @event, @commonName, @username, @realAddress, @realPort, @reason, @plugin)`,
    );
  }

  /** Runs `work` in the next group commit; resolves with its result once that commit is durable. */
  #write<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: never) => void, reject });
      this.#flushing ??= setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#flushing = undefined;
    const batch = this.#queue.splice(0);
    if (batch.length === 0 || !this.#db.open) {
      for (const w of batch) w.reject(new Error('the SQLite store is closed'));
      return;
    }
    let outcomes: { ok: boolean; value: unknown }[];
    try {
      // IMMEDIATE: the write lock first, so a claim counts sessions no other process is changing
      outcomes = this.#db
        .transaction(() =>
          batch.map((w) => {
            const { begin, release, undo } = this.#savepoint;
            begin.run();
            try {
              const value = w.work();
              release.run();
              return { ok: true, value };
            } catch (err) {
              undo.run();
              release.run();
              return { ok: false, value: err };
            }
          }),
        )
        .immediate();
      this.#commits++;
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    for (const [i, o] of outcomes.entries()) {
      if (o.ok) batch[i]!.resolve(o.value as never);
      else batch[i]!.reject(o.value);
    }
  }

  #migrate(): void {
    this.#db.exec(MIGRATIONS_TABLE);
    const applied = new Set((this.#db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db.transaction(() => {
        for (const sql of m.statements('sqlite')) this.#db.exec(sql);
        this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
  }

  stats(): StoreStats {
    return { roundTrips: this.#commits };
  }

  openSession(s: SessionStart): Promise<void> {
    return this.#write(() => this.#record(s));
  }

  /** Records a session, ending an open record of the same connection first (see SUPERSEDE_SET). */
  #record(s: SessionStart): void {
    const row = sessionRow(s);
    this.#supersede.run(row);
    this.#insert.run(row);
  }

  claimSession(s: SessionStart, limit: SessionLimit): Promise<{ recorded: boolean; others: SessionRecord[] }> {
    return this.#write(() => {
      const row = sessionRow(s);
      // a record of this very connection is over, and must not count against the limit
      this.#supersede.run(row);
      const key = limitKeyOf(s);
      const others = (this.#others[key.kind].all({ key: key.name, id: s.id }) as Row[]).map(sessionFromRow);
      if (limit.refuse && others.length >= limit.max) return { recorded: false, others };
      this.#insert.run(row);
      return { recorded: true, others };
    });
  }

  forgetSession(id: string): Promise<void> {
    return this.#write(() => void this.#db.prepare('DELETE FROM sessions WHERE id = ? AND ended_at IS NULL').run(id));
  }

  markKilled(id: string, killed = true): Promise<void> {
    return this.#write(() => void this.#db.prepare('UPDATE sessions SET end_reason = ? WHERE id = ? AND ended_at IS NULL').run(killed ? 'killed' : null, id));
  }

  requestKill(r: KillRequest): Promise<void> {
    return this.#write(
      () =>
        void this.#db
          .prepare('INSERT INTO kill_requests (session_id, instance, common_name, real_address, real_port, reason, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(r.sessionId, r.instance, r.commonName, r.realAddress ?? null, r.realPort ?? null, r.reason, r.requestedAt),
    );
  }

  async takeKillRequests(instances: readonly string[], since: number): Promise<KillRequest[]> {
    if (instances.length === 0) return [];
    const marks = instances.map(() => '?').join(', ');
    return this.#write(() => {
      this.#db.prepare('DELETE FROM kill_requests WHERE requested_at < ?').run(since);
      const rows = this.#db.prepare(`DELETE FROM kill_requests WHERE instance IN (${marks}) RETURNING *`).all(...instances) as Row[];
      return rows.map(killRequestFromRow);
    });
  }

  closeSession(id: string | undefined, c: ClientConnection | undefined, end: SessionEnd): Promise<boolean> {
    const params = {
      vpnAddress: null,
      vpnAddress6: null,
      ...end,
      id: id ?? null,
      instance: c?.instance ?? null,
      commonName: c?.commonName ?? null,
      realAddress: c?.realAddress ?? null,
      realPort: c?.realPort ?? null,
    };
    return this.#write(() => {
      if (id !== undefined && this.#closeById.run(params).changes > 0) return true;
      return c !== undefined && this.#closeByConnection.run(params).changes > 0;
    });
  }

  setGroups(c: ClientConnection, groups: readonly string[]): Promise<boolean> {
    const params = {
      instance: c.instance,
      commonName: c.commonName,
      realAddress: c.realAddress ?? null,
      realPort: c.realPort ?? null,
      clientGroups: groupsColumn(groups),
    };
    return this.#write(() => this.#setGroups.run(params).changes > 0);
  }

  setAddresses(id: string, a: { readonly vpnAddress?: string; readonly vpnAddress6?: string }): Promise<void> {
    return this.#write(() => void this.#setAddresses.run({ v4: a.vpnAddress ?? null, v6: a.vpnAddress6 ?? null, id }));
  }

  recordDenial(d: DenialRecord): Promise<void> {
    return this.#write(() => void this.#denial.run({ commonName: null, username: null, realAddress: null, realPort: null, plugin: null, ...d }));
  }

  async openSessions(instance: string): Promise<SessionRecord[]> {
    return (this.#db.prepare('SELECT * FROM sessions WHERE ended_at IS NULL AND instance = ? ORDER BY started_at').all(instance) as Row[]).map(sessionFromRow);
  }

  async sessions(q: SessionQuery): Promise<SessionRecord[]> {
    const where: string[] = [];
    const p: Record<string, unknown> = {};
    if (q.user !== undefined) {
      where.push('(common_name = @user OR username = @user)');
      p.user = q.user;
    }
    if (q.instance !== undefined) {
      where.push('instance = @instance');
      p.instance = q.instance;
    }
    if (q.since !== undefined) {
      where.push('(ended_at IS NULL OR ended_at >= @since)');
      p.since = q.since;
    }
    if (q.until !== undefined) {
      where.push('started_at < @until');
      p.until = q.until;
    }
    if (q.openOnly) where.push('ended_at IS NULL');
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC LIMIT ${Math.max(1, Math.min(q.limit ?? 1000, 100_000))}`;
    return (this.#db.prepare(sql).all(p) as Row[]).map(sessionFromRow);
  }

  async denials(q: { readonly since?: number; readonly instance?: string; readonly limit?: number }): Promise<DenialRecord[]> {
    const rows = this.#db
      .prepare(
        `SELECT * FROM denials WHERE at >= @since AND (@instance IS NULL OR instance = @instance) ORDER BY at DESC LIMIT ${Math.max(1, Math.min(q.limit ?? 1000, 100_000))}`,
      )
      .all({ since: q.since ?? 0, instance: q.instance ?? null }) as Row[];
    return rows.map(denialFromRow);
  }

  async countOpen(user: string): Promise<number> {
    return (
      this.#db.prepare('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL AND (common_name = ? OR username = ?)').get(user, user) as { n: number }
    ).n;
  }

  /**
   * Copies the store to `to` with SQLite's online backup: one read transaction, so the copy is
   * the store at one moment, and (in WAL mode) the daemon's writes go on meanwhile. The copy
   * is made next to `to` (created new, 0640: it holds names and addresses), checked, switched
   * to a rollback journal so it is one self-contained file, and then renamed to `to`.
   */
  async backup(to: string): Promise<PruneCounts & { readonly open: number }> {
    const partial = `${to}.partial-${process.pid}`;
    // exclusive: never a file or link someone else put there
    closeSync(openSync(partial, 'wx', 0o640));
    try {
      // the first step copies nothing; the next copies every page at once (a restart-free snapshot)
      await this.#db.backup(partial, { progress: () => 0x7fffffff });
      const copy = new Database(partial, { fileMustExist: true });
      let counts: PruneCounts & { readonly open: number };
      try {
        copy.pragma('journal_mode = DELETE');
        const check = copy.pragma('integrity_check', { simple: true });
        if (check !== 'ok') throw new Error(`the copy in ${partial} fails SQLite's integrity check: ${String(check)}`);
        const n = (sql: string) => (copy.prepare(sql).get() as { n: number }).n;
        counts = {
          sessions: n('SELECT COUNT(*) AS n FROM sessions'),
          open: n('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL'),
          denials: n('SELECT COUNT(*) AS n FROM denials'),
        };
      } finally {
        copy.close();
      }
      renameSync(partial, to);
      return counts;
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
  }

  async prune(before: number, options: PruneOptions = {}): Promise<PruneCounts> {
    const counts = { sessions: 0, denials: 0 };
    for (const [table, where] of [
      ['sessions', PRUNE_SESSIONS_WHERE],
      ['denials', PRUNE_DENIALS_WHERE],
    ] as const) {
      const sql = where.replaceAll('$before', '@before');
      if (options.dryRun) {
        counts[table] = (this.#db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${sql}`).get({ before }) as { n: number }).n;
        continue;
      }
      const remove = this.#db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${sql} LIMIT @batch)`);
      const batch = options.batch ?? PRUNE_BATCH;
      // one short transaction per batch, through the group commit: the daemon's writes go in between
      let removed: number;
      do {
        removed = await this.#write(() => remove.run({ before, batch }).changes);
        counts[table] += removed;
      } while (removed === batch);
    }
    return counts;
  }

  async close(): Promise<void> {
    if (this.#flushing) clearImmediate(this.#flushing);
    this.#flush();
    if (this.#db.open) this.#db.close();
  }
}

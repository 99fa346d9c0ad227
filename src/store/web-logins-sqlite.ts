/**
 * @module web-logins-sqlite
 * Web logins in progress in the SQLite store: the same steps as in PostgreSQL, each taken in the
 * store's write transaction (one writer at a time), so each is taken once there too.
 */
import type Database from 'better-sqlite3';
import {
  claimedFromRow,
  openFromRow,
  outcomeColumn,
  outcomeFromColumn,
  SETTLE_FROM,
  startMiss,
  type WebLoginOpen,
  type WebLoginOutcome,
  type WebLoginRow,
  type WebLoginSecrets,
  type WebLoginStates,
  type WebLoginStep,
} from './web-logins.ts';

export class SqliteWebLogins implements WebLoginStates {
  constructor(
    private readonly db: Database.Database,
    /** The store's durable write: runs `work` in its next commit. */
    private readonly write: <T>(work: () => T) => Promise<T>,
  ) {}

  open(l: WebLoginOpen): Promise<void> {
    return this.write(
      () =>
        void this.db
          .prepare(
            `INSERT INTO web_logins (id, owner, instance, common_name, real_address, real_port, same_address, expires_at, step)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')`,
          )
          .run(l.id, l.owner, l.instance, l.commonName, l.realAddress ?? null, l.realPort ?? null, l.sameAddress ? 1 : 0, l.expiresAt),
    );
  }

  start(id: string, s: WebLoginSecrets, now: number): Promise<WebLoginStep<WebLoginOpen>> {
    return this.write(() => {
      const row = this.db
        .prepare(
          `UPDATE web_logins SET step = 'started', state = ?, nonce = ?, verifier = ?, browser = ?
           WHERE id = ? AND step = 'open' AND expires_at > ? RETURNING *`,
        )
        .get(s.state, s.nonce, s.verifier, s.browser, id, now) as WebLoginRow | undefined;
      if (row) return { ok: true, login: openFromRow(row) };
      const seen = this.db.prepare('SELECT step, expires_at FROM web_logins WHERE id = ?').get(id) as WebLoginRow | undefined;
      return { ok: false, why: startMiss(seen, now) };
    });
  }

  claim(state: string): Promise<WebLoginStep<WebLoginOpen & WebLoginSecrets>> {
    return this.write(() => {
      const row = this.db.prepare(`UPDATE web_logins SET step = 'claimed' WHERE state = ? AND step = 'started' RETURNING *`).get(state) as
        | WebLoginRow
        | undefined;
      if (row) return { ok: true, login: claimedFromRow(row) };
      const seen = this.db.prepare('SELECT 1 FROM web_logins WHERE state = ?').get(state) !== undefined;
      return { ok: false, why: seen ? 'used' : 'unknown' };
    });
  }

  settle(id: string, outcome: WebLoginOutcome): Promise<boolean> {
    return this.write(
      () =>
        this.db.prepare(`UPDATE web_logins SET step = 'done', outcome = ? WHERE id = ? AND step IN ${SETTLE_FROM}`).run(outcomeColumn(outcome), id).changes > 0,
    );
  }

  take(owner: string, ids: readonly string[]): Promise<{ id: string; outcome: WebLoginOutcome }[]> {
    if (ids.length === 0) return Promise.resolve([]);
    const marks = ids.map(() => '?').join(', ');
    return this.write(() => {
      const rows = this.db.prepare(`SELECT id, outcome FROM web_logins WHERE id IN (${marks}) AND owner = ? AND step = 'done'`).all(...ids, owner) as {
        id: string;
        outcome: string;
      }[];
      const taken = this.db.prepare(`UPDATE web_logins SET step = 'taken', outcome = NULL, nonce = NULL, verifier = NULL, browser = NULL WHERE id = ?`);
      for (const r of rows) taken.run(r.id);
      return rows.map((r) => ({ id: r.id, outcome: outcomeFromColumn(r.outcome) }));
    });
  }

  end(id: string): Promise<void> {
    return this.write(() => void this.db.prepare(`DELETE FROM web_logins WHERE id = ? AND step <> 'taken'`).run(id));
  }

  sweep(now: number): Promise<number> {
    return this.write(() => this.db.prepare('DELETE FROM web_logins WHERE expires_at <= ?').run(now).changes);
  }
}

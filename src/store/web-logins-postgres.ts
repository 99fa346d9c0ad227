/**
 * @module web-logins-postgres
 * Web logins in progress in the shared PostgreSQL store: each step is one statement that takes
 * it only from the step before, so of two daemons (or two browsers) only one wins it.
 */
import type pg from 'pg';
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

export class PostgresWebLogins implements WebLoginStates {
  constructor(private readonly pool: pg.Pool) {}

  async open(l: WebLoginOpen): Promise<void> {
    await this.pool.query(
      `INSERT INTO web_logins (id, owner, instance, common_name, real_address, real_port, same_address, expires_at, step)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')`,
      [l.id, l.owner, l.instance, l.commonName, l.realAddress ?? null, l.realPort ?? null, l.sameAddress ? 1 : 0, l.expiresAt],
    );
  }

  async start(id: string, s: WebLoginSecrets, now: number): Promise<WebLoginStep<WebLoginOpen>> {
    const r = await this.pool.query<WebLoginRow>(
      `UPDATE web_logins SET step = 'started', state = $2, nonce = $3, verifier = $4, browser = $5
       WHERE id = $1 AND step = 'open' AND expires_at > $6 RETURNING *`,
      [id, s.state, s.nonce, s.verifier, s.browser, now],
    );
    if (r.rows[0]) return { ok: true, login: openFromRow(r.rows[0]) };
    const row = (await this.pool.query<WebLoginRow>('SELECT step, expires_at FROM web_logins WHERE id = $1', [id])).rows[0];
    return { ok: false, why: startMiss(row, now) };
  }

  async claim(state: string): Promise<WebLoginStep<WebLoginOpen & WebLoginSecrets>> {
    const r = await this.pool.query<WebLoginRow>(`UPDATE web_logins SET step = 'claimed' WHERE state = $1 AND step = 'started' RETURNING *`, [state]);
    const row = r.rows[0];
    if (row) return { ok: true, login: claimedFromRow(row) };
    const seen = (await this.pool.query('SELECT 1 FROM web_logins WHERE state = $1', [state])).rowCount ?? 0;
    return { ok: false, why: seen > 0 ? 'used' : 'unknown' };
  }

  async settle(id: string, outcome: WebLoginOutcome): Promise<boolean> {
    const r = await this.pool.query(`UPDATE web_logins SET step = 'done', outcome = $2 WHERE id = $1 AND step IN ${SETTLE_FROM}`, [id, outcomeColumn(outcome)]);
    return (r.rowCount ?? 0) > 0;
  }

  async take(owner: string, ids: readonly string[]): Promise<{ id: string; outcome: WebLoginOutcome }[]> {
    if (ids.length === 0) return [];
    // the old row's outcome is returned; the row keeps no secret once taken
    const r = await this.pool.query<{ id: string; outcome: string }>(
      `UPDATE web_logins w SET step = 'taken', outcome = NULL, nonce = NULL, verifier = NULL, browser = NULL
       FROM (SELECT id, outcome FROM web_logins WHERE id = ANY($1) AND owner = $2 AND step = 'done' FOR UPDATE) old
       WHERE w.id = old.id RETURNING old.id, old.outcome`,
      [[...ids], owner],
    );
    return r.rows.map((row) => ({ id: row.id, outcome: outcomeFromColumn(row.outcome) }));
  }

  async end(id: string): Promise<void> {
    await this.pool.query(`DELETE FROM web_logins WHERE id = $1 AND step <> 'taken'`, [id]);
  }

  async sweep(now: number): Promise<number> {
    return (await this.pool.query('DELETE FROM web_logins WHERE expires_at <= $1', [now])).rowCount ?? 0;
  }
}

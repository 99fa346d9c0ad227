/**
 * Session limits count usernames and common names apart, in both stores: a certificate named
 * `alice` and the (verified) username `alice` are two users, so neither can use up or take over
 * the other's sessions. A store made before this keeps its records when it is opened again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, MIGRATIONS_TABLE } from '../../src/store/migrations.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { SessionStart, Store } from '../../src/store/store.ts';
import { postgresBin, startPostgres } from '../support/postgres.ts';

const start = (commonName: string, username: string | undefined, realPort: number): SessionStart => ({
  id: randomUUID(),
  instance: 'vpn1',
  commonName,
  username,
  realAddress: '198.51.100.7',
  realPort,
  startedAt: 1_700_000_000_000 + realPort,
});

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-limit-keys-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const backends: [string, (t: TestContext) => Promise<Store>, string | false][] = [
  [
    'sqlite',
    async (t) => {
      const store = new SqliteStore(join(await tempDir(t), 'a.db'));
      t.after(() => store.close());
      return store;
    },
    false,
  ],
  [
    'postgres',
    async (t) => {
      const pg = await startPostgres(t);
      const store = await PostgresStore.open({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, 'password-file': pg.passwordFile, pool: 2 });
      t.after(() => store.close());
      return store;
    },
    postgresBin() ? false : 'PostgreSQL is not installed',
  ],
];

for (const [name, open, skip] of backends) {
  describe(`session-limit keys: ${name}`, { skip }, () => {
    test('username alice and common name alice are separate keys, and records keep the two fields apart', async (t) => {
      const store = await open(t);
      const byCertificate = start('alice', undefined, 1);
      assert.equal((await store.claimSession(byCertificate, { max: 1, refuse: true })).recorded, true);
      // a verified username alice on another certificate is another user
      const byUsername = start('laptop', 'alice', 2);
      const claim = await store.claimSession(byUsername, { max: 1, refuse: true });
      assert.deepEqual([claim.recorded, claim.others.length], [true, 0], 'the common name alice does not count against username alice');
      // and a certificate named like a username does not count against it (nor push it out)
      const other = await store.claimSession(start('carol', undefined, 3), { max: 1, refuse: false });
      const carol = await store.claimSession(start('phone', 'carol', 4), { max: 1, refuse: false });
      assert.deepEqual([other.others.length, carol.others.length], [0, 0]);
      // each key still has its limit
      assert.equal((await store.claimSession(start('tablet', 'alice', 5), { max: 1, refuse: true })).recorded, false);
      assert.equal((await store.claimSession(start('alice', undefined, 6), { max: 1, refuse: true })).recorded, false);
      const records = (await store.sessions({ openOnly: true })).map((r) => [r.commonName, r.username]).sort((a, b) => String(a).localeCompare(String(b)));
      assert.deepEqual(records, [
        ['alice', undefined],
        ['carol', undefined],
        ['laptop', 'alice'],
        ['phone', 'carol'],
      ]);
    });
  });
}

test('a store made before the limit keys were separate is migrated and keeps its records', async (t) => {
  const file = join(await tempDir(t), 'old.db');
  // the schema as the two earlier migrations left it, with one open session
  const db = new Database(file);
  db.exec(MIGRATIONS_TABLE);
  for (const m of MIGRATIONS.filter((m) => m.version <= 2)) {
    for (const sql of m.statements('sqlite')) db.exec(sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, 0);
  }
  db.prepare("INSERT INTO sessions (id, instance, common_name, started_at) VALUES ('old', 'vpn1', 'alice', 1)").run();
  db.close();

  const store = new SqliteStore(file);
  t.after(() => store.close());
  assert.deepEqual(
    (await store.openSessions('vpn1')).map((r) => r.id),
    ['old'],
  );
  const refused = await store.claimSession(start('alice', undefined, 7), { max: 1, refuse: true });
  assert.deepEqual([refused.recorded, refused.others.map((r) => r.id)], [false, ['old']]);
  assert.equal((await store.claimSession(start('laptop', 'alice', 8), { max: 1, refuse: true })).recorded, true);
  const check = new Database(file, { readonly: true });
  t.after(() => check.close());
  const indexes = (check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'").all() as { name: string }[]).map(
    (r) => r.name,
  );
  assert.ok(
    indexes.includes('sessions_username_open') && indexes.includes('sessions_common_name_open') && !indexes.includes('sessions_user_open'),
    indexes.join(', '),
  );
});

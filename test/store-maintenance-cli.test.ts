/**
 * `flexscript backup` and `flexscript prune` on a real SQLite store: a backup taken while
 * sessions are being written is a consistent, self-contained copy that restores; prune removes
 * what ended before the cutoff and never an open session; neither creates a missing store.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import type { SessionStart } from '../src/store/store.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

/** Runs the CLI without blocking this process's event loop (a writer runs here meanwhile). */
function flexscriptAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLEXSCRIPT, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const DAY = 86_400_000;
let port = 1000;
const session = (commonName: string, startedAt: number): SessionStart => ({
  id: `${commonName}-${port}`,
  instance: 'vpn',
  commonName,
  realAddress: '198.51.100.7',
  realPort: port++,
  startedAt,
});

function setup(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-maint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'accounting.db');
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, `store:\n  sqlite: ${db}\n`);
  return { dir, db, config };
}

test('backup while sessions are being written: a consistent copy, 0640, one file, that restores', async (t) => {
  const { dir, db, config } = setup(t);
  const store = new SqliteStore(db);
  t.after(() => store.close());
  for (let i = 0; i < 200; i++) await store.openSession(session(`before-${i}`, Date.now()));
  await store.recordDenial({ at: Date.now(), instance: 'vpn', event: 'client-connect', commonName: 'eve', reason: 'not on the list' });

  // the "daemon" keeps recording connects and disconnects while the backup runs
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      const s = session(`during-${written++}`, Date.now());
      await store.openSession(s);
      if (written % 2) await store.closeSession(s.id, undefined, { endedAt: Date.now(), duration: 0, bytesIn: 1, bytesOut: 2, reason: 'disconnect' });
    }
  })();
  const to = join(dir, 'backup.db');
  const r = await flexscriptAsync('backup', '--config', config, '--to', to);
  writing = false;
  await writer;
  assert.equal(r.status, 0, r.stderr);
  assert.ok(written > 0, 'sessions were written during the backup');
  const m = /^backed up .* to .*backup\.db: (\d+) sessions \((\d+) open\), 1 denial$/m.exec(r.stdout);
  assert.ok(m, r.stdout);

  assert.equal(statSync(to).mode & 0o777, 0o640, 'names and addresses: not for every local user');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('backup.db')),
    ['backup.db'],
    'one self-contained file, no partial file left',
  );
  const copy = new Database(to, { readonly: true, fileMustExist: true });
  assert.equal(copy.pragma('journal_mode', { simple: true }), 'delete');
  assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
  const count = (sql: string) => (copy.prepare(sql).get() as { n: number }).n;
  assert.equal(count('SELECT COUNT(*) AS n FROM sessions'), Number(m[1]), 'the copy holds what the command reported');
  assert.equal(count('SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL'), Number(m[2]));
  assert.ok(count("SELECT COUNT(*) AS n FROM sessions WHERE common_name LIKE 'before-%'") === 200);
  copy.close();

  // restore: the copy in place of a store, opened by the daemon's store code
  const restored = join(dir, 'restored.db');
  copyFileSync(to, restored);
  const back = new SqliteStore(restored);
  t.after(() => back.close());
  assert.equal((await back.sessions({ limit: 100_000 })).length, Number(m[1]));
  assert.equal((await back.denials({}))[0]?.reason, 'not on the list');

  // an existing file is kept unless --force
  const again = flexscript('backup', '--config', config, '--to', to);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /backup\.db exists; give another file, or --force to replace it/);
  const forced = flexscript('backup', '--config', config, '--to', to, '--force');
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, new RegExp(`: ${200 + written} sessions`));
});

test('backup and prune never create a missing store; backup of a PostgreSQL store says to use pg_dump', (t) => {
  const { dir, db, config } = setup(t);
  for (const args of [
    ['backup', '--to', join(dir, 'b.db')],
    ['prune', '--older-than', '30d'],
  ]) {
    const r = flexscript(...args, '--config', config);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /no store at .*accounting\.db/);
    assert.equal(existsSync(db), false, `${args[0]} created no store`);
  }
  assert.equal(existsSync(join(dir, 'b.db')), false);

  const password = join(dir, 'pg-password');
  writeFileSync(password, 'secret\n', { mode: 0o600 });
  writeFileSync(config, `store:\n  postgres: { host: db.example, database: vpn, user: flexscript, password-file: ${password} }\n`);
  const pg = flexscript('backup', '--config', config, '--to', '/var/backups/vpn.dump');
  assert.equal(pg.status, 1);
  assert.match(
    pg.stderr,
    /the store is PostgreSQL: back it up with pg_dump, e\.g\. pg_dump -h db\.example -p 5432 -U flexscript -Fc -f \/var\/backups\/vpn\.dump vpn/,
  );
});

test('prune --older-than: closed sessions and denials older than the age go, open ones stay; --dry-run only counts; an age needs its unit', async (t) => {
  const { db, config } = setup(t);
  const now = Date.now();
  const store = new SqliteStore(db);
  const old = session('old', now - 200 * DAY);
  const ancientButOpen = session('still-connected', now - 400 * DAY);
  const recent = session('recent', now - 10 * DAY);
  for (const s of [old, ancientButOpen, recent]) await store.openSession(s);
  await store.closeSession(old.id, undefined, { endedAt: now - 199 * DAY, duration: 60, bytesIn: 1, bytesOut: 1, reason: 'disconnect' });
  await store.closeSession(recent.id, undefined, { endedAt: now - 9 * DAY, duration: 60, bytesIn: 1, bytesOut: 1, reason: 'disconnect' });
  await store.recordDenial({ at: now - 300 * DAY, instance: 'vpn', event: 'client-connect', commonName: 'eve', reason: 'old' });
  await store.recordDenial({ at: now - DAY, instance: 'vpn', event: 'client-connect', commonName: 'eve', reason: 'new' });
  await store.close();
  const names = async () => {
    const s = new SqliteStore(db, { readOnly: true });
    try {
      return { sessions: (await s.sessions({})).map((r) => r.commonName).sort(), denials: (await s.denials({})).map((d) => d.reason) };
    } finally {
      await s.close();
    }
  };
  const all = await names();

  const dry = flexscript('prune', '--config', config, '--older-than', '180d', '--dry-run');
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /^would remove 1 session record that ended and 1 denial made before \S+Z \(older than 180d\); open sessions are kept$/m);
  assert.deepEqual(await names(), all, 'a dry run removes nothing');

  const done = flexscript('prune', '--config', config, '--older-than', '26w');
  assert.equal(done.status, 0, done.stderr);
  assert.match(done.stdout, /^removed 1 session record that ended and 1 denial made before/m);
  assert.deepEqual(await names(), { sessions: ['recent', 'still-connected'], denials: ['new'] });

  for (const age of ['180', '0d', '6 months', '-1d']) {
    const bad = flexscript('prune', '--config', config, '--older-than', age);
    assert.equal(bad.status, 2, `${age}: ${bad.stderr}`);
    assert.match(bad.stderr, /give an age above zero with its unit, e\.g\. 180d/);
  }
});

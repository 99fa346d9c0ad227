/**
 * The accounting store's file: `flexscript sessions` (often run as root) only reads it and never
 * creates it, and the daemon creates it (and its WAL files) readable by its group only, since it
 * holds names, real addresses and times.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { FLEXSCRIPT, RUN_AS, ownedDir, startDaemon, writeConfig } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';

const sessions = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, 'sessions', ...args], { encoding: 'utf8' });

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-store-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('flexscript sessions on a missing store says so and creates nothing', (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'accounting.db');
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, `store:\n  sqlite: ${db}\n`);
  const r = sessions('--config', config);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `flexscript sessions: no store at ${db}\n`);
  assert.deepEqual(readdirSync(dir), ['flexscript.yaml'], 'no database file was created');
});

test("flexscript sessions as root reads the daemon's store without taking it over", async (t) => {
  const dir = tempDir(t);
  const work = ownedDir(join(dir, 'work'));
  const db = join(work, 'accounting.db');
  const path = writeConfig(dir, ['instance: ro', 'hook:', `  dir: ${join(work, 'run')}`, '  group: nogroup', 'store:', `  sqlite: ${db}`].join('\n'));
  // the daemon (nobody) creates the store
  const daemon = await startDaemon(path, join(dir, 'daemon.log'));
  await daemon.stop();
  const before = readdirSync(work).filter((f) => f.startsWith('accounting.db'));
  const r = sessions('--config', path, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
  for (const f of readdirSync(work).filter((n) => n.startsWith('accounting.db'))) {
    assert.equal(statSync(join(work, f)).uid, RUN_AS.uid, `${f} stays the daemon's`);
  }
  assert.ok(before.includes('accounting.db'));
  // and the daemon still opens it
  const again = await startDaemon(path, join(dir, 'daemon.log'));
  t.after(() => again.stop());
  assert.ok(again.logs().some((l) => l.msg === 'store: SQLite'));
});

test('the daemon creates the SQLite store and its WAL files with mode 0640', async (t) => {
  const dir = tempDir(t);
  const work = ownedDir(join(dir, 'work'));
  const db = join(work, 'accounting.db');
  const path = writeConfig(dir, ['instance: perms', 'hook:', `  dir: ${join(work, 'run')}`, '  group: nogroup', 'store:', `  sqlite: ${db}`].join('\n'));
  const daemon = await startDaemon(path, join(dir, 'daemon.log'));
  t.after(() => daemon.stop());
  // while the daemon runs, the WAL and its index exist beside the database
  const files = await waitFor('the store and its WAL files', () => {
    const f = readdirSync(work).filter((n) => n.startsWith('accounting.db'));
    return f.length === 3 && f;
  });
  for (const f of files.sort()) {
    const st = statSync(join(work, f));
    assert.equal(st.uid, RUN_AS.uid, `${f} is the daemon's`);
    assert.equal((st.mode & 0o777).toString(8), '640', `${f} is not readable by others`);
  }
  assert.ok(existsSync(db));
});

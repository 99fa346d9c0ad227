/**
 * `flexscript sessions` on a store with known records: the table, --json, and each filter.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { parseWhen } from '../src/cli/sessions.ts';
import { SqliteStore } from '../src/store/sqlite-store.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, 'sessions', ...args], { encoding: 'utf8' });

test('flexscript sessions lists history newest first, filters by user, instance, time and open, as a table or JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-sessions-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'a.db');
  const store = new SqliteStore(db);
  const now = Date.now();
  const base = { realAddress: '198.51.100.7', realPort: 5000, vpnAddress: '10.8.0.2' };
  await store.openSession({ ...base, id: 'a', instance: 'vpn1', commonName: 'alice', username: 'alice@corp', startedAt: now - 3 * 3_600_000 });
  await store.closeSession(
    'a',
    { instance: 'vpn1', commonName: 'alice' },
    { endedAt: now - 2 * 3_600_000, duration: 3600, bytesIn: 10, bytesOut: 20, reason: 'disconnect' },
  );
  await store.openSession({ ...base, id: 'b', instance: 'vpn2', commonName: 'bob', startedAt: now - 60_000 });
  await store.openSession({ ...base, id: 'c', instance: 'vpn1', commonName: 'eve\nx', startedAt: now - 30_000 });
  await store.close();
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, `store:\n  sqlite: ${db}\n`);

  const all = flexscript('--config', config);
  assert.equal(all.status, 0, all.stderr);
  const lines = all.stdout.trim().split('\n');
  assert.match(lines[0]!, /^INSTANCE\s+NAME\s+USER\s+VPN ADDRESS\s+REAL ADDRESS\s+START \([^)]+\)\s+END\s+DURATION\s+BYTES IN\s+BYTES OUT\s+ENDED BY$/);
  assert.equal(lines.length, 4);
  assert.match(lines[1]!, /^vpn1\s+eve\\nx\s/, 'newest first; a control character is shown escaped');
  assert.match(lines[3]!, /^vpn1\s+alice\s+alice@corp\s+10\.8\.0\.2\s+198\.51\.100\.7:5000\s.*\s1h00m00s\s+10\s+20\s+disconnect$/);
  assert.match(lines[2]!, /\sconnected\s/);

  const names = (...args: string[]) => {
    const r = flexscript('--config', config, '--json', ...args);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { commonName: string }[]).map((s) => s.commonName);
  };
  assert.deepEqual(names(), ['eve\nx', 'bob', 'alice']);
  assert.deepEqual(names('--user', 'alice@corp'), ['alice']);
  assert.deepEqual(names('--instance', 'vpn2'), ['bob']);
  assert.deepEqual(names('--open'), ['eve\nx', 'bob']);
  assert.deepEqual(names('--since', '90m'), ['eve\nx', 'bob'], 'alice ended two hours ago');
  assert.deepEqual(names('--until', '2m'), ['alice']);
  assert.deepEqual(names('--limit', '1'), ['eve\nx']);

  const bad = flexscript('--config', config, '--since', 'yesterday-ish');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /"yesterday-ish" is not a time/);
  writeFileSync(config, 'instance: x\n');
  assert.match(flexscript('--config', config).stderr, /has no store: section/);
});

test('times: relative and ISO', () => {
  assert.equal(parseWhen('2h', 10_000_000), 10_000_000 - 7_200_000);
  assert.equal(parseWhen('2026-11-28T10:00:00Z'), Date.UTC(2026, 10, 28, 10));
  assert.throws(() => parseWhen('soon'), /not a time/);
});

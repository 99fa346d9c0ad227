/**
 * Session limits through real OpenVPN: over the limit a new client is refused (it sees
 * AUTH_FAILED) in both modes; with disconnect-oldest the new client is admitted and the oldest
 * one is sent away (management mode), or, where the oldest cannot be disconnected (hook mode),
 * the new client is refused so that the limit still holds.
 */
import assert from 'node:assert/strict';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { MODES, modeLab, type Mode } from './mode-lab.ts';

async function limitLab(t: TestContext, mode: Mode, options: string) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-limit-'));
  await chown(dir, 65534, 65534);
  t.after(() => rm(dir, { recursive: true, force: true }));
  const db = join(dir, 'accounting.db');
  const h = await modeLab(t, mode, {
    extraConfig: ['store:', `  sqlite: ${db}`],
    plugins: ['  - use: session-limit', `    options: ${options}`],
    pluginsAfter: ['  - use: accounting'],
    // OpenVPN itself would replace a client by a newer one of the same name
    extraServer: ['duplicate-cn'],
  });
  const read = async <T>(f: (store: SqliteStore) => Promise<T>) => {
    const store = new SqliteStore(db);
    try {
      return await f(store);
    } finally {
      await store.close();
    }
  };
  const sessions = (user: string) => read((s) => s.sessions({ user }));
  // the server learns at once that a stopped client has gone
  const client = (commonName: string) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] });
  return { ...h, read, sessions, client };
}

for (const mode of MODES) {
  describe(`session-limit, ${mode} mode`, () => {
    test('over the limit the new client is refused with AUTH_FAILED and the refusal is recorded', async (t) => {
      const h = await limitLab(t, mode, '{ max: 2 }');
      const first = await h.client('alice');
      await first.waitConnected();
      const second = await h.client('alice');
      await second.waitConnected();
      const third = await h.client('alice');
      await third.waitAuthFailed();
      const other = await h.client('bob');
      await other.waitConnected();
      assert.equal((await h.sessions('alice')).filter((r) => r.endedAt === undefined).length, 2);
      const denials = await h.read((s) => s.denials({}));
      assert.deepEqual(
        denials.map((d) => [d.event, d.commonName, d.plugin, d.reason]),
        [['client-connect', 'alice', 'session-limit', 'session-limit: "alice" has 2 session(s) open, at most 2 allowed']],
      );
      // a slot freed by a disconnect is usable again
      await first.stop();
      await waitFor('alice down to one session', async () => (await h.sessions('alice')).filter((r) => r.endedAt === undefined).length === 1);
      const fourth = await h.client('alice');
      await fourth.waitConnected();
    });
  });
}

describe('session-limit, management mode', () => {
  test('disconnect-oldest: the new client is admitted, the oldest is halted and its record ends as killed', async (t) => {
    const h = await limitLab(t, 'management', '{ max: 1, on-exceed: disconnect-oldest }');
    const old = await h.client('carol');
    await old.waitConnected();
    const current = await h.client('carol');
    await current.waitConnected();
    // HALT: the old client stops instead of reconnecting and pushing the new one out in turn
    await waitFor('the old client halted', () => old.log().includes('a newer session of this user replaced this one'), { timeoutMs: 30_000 });
    await old.exited;
    const [newest, oldest] = await waitFor('the oldest record closed', async () => {
      const r = await h.sessions('carol');
      return r[1]?.endedAt !== undefined ? r : undefined;
    });
    assert.equal(oldest?.endReason, 'killed');
    assert.equal(newest?.endedAt, undefined);
    // a later client's whole connect went through the same management connection after any
    // kill the daemon sent: by now OpenVPN has carried out every kill there was
    const later = await h.client('dora');
    await later.waitConnected();
    assert.equal(h.server.log().match(/MANAGEMENT: CMD 'client-kill /g)?.length, 1, 'one client was killed');
    assert.ok(!current.log().includes('SIGTERM'), 'the new client stays');
  });
});

describe('session-limit, hook mode', () => {
  test('disconnect-oldest where the oldest cannot be disconnected: the new client is refused, the oldest stays', async (t) => {
    const h = await limitLab(t, 'hook', '{ max: 1, on-exceed: disconnect-oldest }');
    const old = await h.client('gina');
    await old.waitConnected();
    const late = await h.client('gina');
    await late.waitAuthFailed();
    const records = await h.sessions('gina');
    assert.deepEqual(
      records.map((r) => r.endedAt === undefined),
      [true],
      'one record, open: the refused one is not kept',
    );
    const denials = await h.read((s) => s.denials({}));
    assert.match(denials[0]?.reason ?? '', /the oldest cannot be disconnected here/);
    assert.equal(old.log().includes('replaced this one'), false, 'the oldest stays');
  });
});

/**
 * Session limits across two real OpenVPN servers whose daemons share one PostgreSQL store: one
 * server in hook mode, the other in management mode. A user's sessions count on both, so the
 * limit holds for the pair; with disconnect-oldest the daemon of the newer session asks the
 * other daemon, through the store, to disconnect the older one.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { startPostgres } from '../support/postgres.ts';
import { modeLab } from './mode-lab.ts';

async function twoServers(t: TestContext, options: string) {
  const pg = await startPostgres(t);
  const lab = (mode: 'hook' | 'management', instance: string) =>
    modeLab(t, mode, {
      instance,
      extraConfig: pg.yaml,
      plugins: ['  - use: session-limit', `    options: ${options}`],
      pluginsAfter: ['  - use: accounting'],
    });
  // one after the other: the second daemon finds the schema migrated by the first
  const hook = await lab('hook', 'north');
  const management = await lab('management', 'south');
  const store = await PostgresStore.open({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, 'password-file': pg.passwordFile, pool: 1 });
  t.after(() => store.close());
  const client = (h: typeof hook, commonName: string) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] });
  return { hook, management, store, client };
}

describe('session-limit across servers sharing PostgreSQL', () => {
  test('deny-new: a user connected to one server is refused by the other', async (t) => {
    const s = await twoServers(t, '{ max: 1 }');
    const first = await s.client(s.management, 'dana');
    await first.waitConnected();
    const second = await s.client(s.hook, 'dana');
    await second.waitAuthFailed();
    const denials = await s.store.denials({});
    assert.deepEqual(
      denials.map((d) => [d.instance, d.commonName, d.plugin]),
      [['north', 'dana', 'session-limit']],
    );
    // another user is not affected, and the slot comes back when dana leaves the first server
    const other = await s.client(s.hook, 'erik');
    await other.waitConnected();
    await first.stop();
    await waitFor('dana closed on south', async () => (await s.store.sessions({ user: 'dana' })).every((r) => r.endedAt !== undefined));
    const third = await s.client(s.hook, 'dana');
    await third.waitConnected();
  });

  test('disconnect-oldest: the newer session on one server halts the older one on the other', async (t) => {
    const s = await twoServers(t, '{ max: 1, on-exceed: disconnect-oldest, kill-poll: 0.5 }');
    const old = await s.client(s.management, 'fred');
    await old.waitConnected();
    const current = await s.client(s.hook, 'fred');
    await current.waitConnected();
    // the hook-mode daemon cannot reach south's client: south's daemon takes the request
    await waitFor('the old client halted', () => old.log().includes('a newer session of this user replaced this one'), { timeoutMs: 30_000 });
    await old.exited;
    const records = await waitFor('the south record closed', async () => {
      const r = await s.store.sessions({ user: 'fred' });
      return r.find((x) => x.instance === 'south')?.endedAt !== undefined ? r : undefined;
    });
    assert.equal(records.find((r) => r.instance === 'south')?.endReason, 'killed');
    assert.equal(records.find((r) => r.instance === 'north')?.endedAt, undefined);
    assert.equal(current.log().includes('replaced this one'), false, 'the newer client stays');
  });
});

/**
 * Accounting through real OpenVPN, in both modes: sessions and denials land in the store with
 * the right fields, and a daemon killed with -9 in the middle of many connects loses no record:
 * after its restart every connected client has exactly one open record, and the records of
 * clients that left meanwhile are closed.
 */
import assert from 'node:assert/strict';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { waitFor } from '../../src/lab/wait.ts';
import type { OpenVpnClient } from '../../src/lab/openvpn-process.ts';
import { CAPS, MODES, modeLab, type Mode } from './mode-lab.ts';
import { startPostgres } from '../support/postgres.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';

interface Row {
  id: string;
  common_name: string;
  real_port: number;
  vpn_address: string | null;
  ended_at: number | null;
  duration: number | null;
  bytes_in: number | null;
  bytes_out: number | null;
  end_reason: string | null;
}

/** A folder the daemon (nobody) can write its database into. */
async function storeDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-accounting-'));
  await chown(dir, 65534, 65534);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function accountingLab(t: TestContext, mode: Mode, dir: string, extraServer: string[] = [], storeYaml?: string[]) {
  return modeLab(t, mode, {
    // hook mode: a restarted daemon reads the live clients from OpenVPN's status file
    statusFile: true,
    extraConfig: storeYaml ?? ['store:', `  sqlite: ${join(dir, 'accounting.db')}`],
    pluginsAfter: ['  - use: accounting'],
    extraServer,
  });
}

const rows = (dir: string): Row[] => {
  const db = new Database(join(dir, 'accounting.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM sessions ORDER BY started_at').all() as Row[];
  } finally {
    db.close();
  }
};

// a client refused while no daemon runs (fail closed) tries again instead of giving up
const client = (h: Awaited<ReturnType<typeof modeLab>>, commonName: string) =>
  h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1', 'auth-retry nointeract'] });

/** Connected at last, whatever was refused on the way. */
const eventuallyConnected = (c: OpenVpnClient) =>
  waitFor(`${c.commonName} connected`, () => c.log().includes('Initialization Sequence Completed'), { timeoutMs: 120_000, intervalMs: 250 });

for (const mode of MODES) {
  describe(`accounting, ${mode} mode`, () => {
    test('a session is recorded with addresses, bytes, duration and how it ended; a denial with its reason', async (t) => {
      const dir = await storeDir(t);
      const h = await accountingLab(t, mode, dir);
      const alice = await client(h, 'alice');
      await alice.waitConnected();
      const eve = await client(h, 'deny-eve');
      await eve.waitAuthFailed();
      const open = await waitFor('an open record for alice', () => rows(dir).find((r) => r.common_name === 'alice' && r.ended_at === null));
      assert.match(open.vpn_address ?? '', /^10\./);
      await alice.stop();
      const closed = await waitFor('alice closed', () => rows(dir).find((r) => r.common_name === 'alice' && r.ended_at !== null));
      assert.equal(closed.end_reason, 'disconnect');
      assert.ok((closed.bytes_in ?? 0) > 0 && (closed.bytes_out ?? 0) > 0, 'bytes counted');
      assert.ok((closed.duration ?? -1) >= 0);
      assert.equal(rows(dir).filter((r) => r.common_name === 'deny-eve').length, 0, 'a denied client has no session');
      const db = new Database(join(dir, 'accounting.db'), { readonly: true });
      const denial = db.prepare("SELECT * FROM denials WHERE common_name = 'deny-eve'").get() as { reason: string; plugin: string; event: string };
      db.close();
      assert.deepEqual([denial.event, denial.reason, denial.plugin], ['client-connect', 'recorder refuses deny-eve', 'recorder']);
    });

    test('kill -9 of the daemon in the middle of many connects loses no record; records of clients that left meanwhile are closed', async (t) => {
      const dir = await storeDir(t);
      // a connect whose answer died with the daemon is retried by the client after hand-window
      const h = await accountingLab(t, mode, dir, ['hand-window 10']);
      const early = await Promise.all(['early-1', 'early-2', 'early-3'].map((cn) => client(h, cn)));
      await Promise.all(early.map((c) => c.waitConnected()));
      const storm: Promise<OpenVpnClient>[] = Array.from({ length: 20 }, (_, i) => client(h, `storm-${i}`));
      // kill once some of the storm has been answered, while others are still in flight
      await waitFor('part of the storm recorded', () => rows(dir).filter((r) => r.common_name.startsWith('storm-')).length >= 4, { intervalMs: 20 });
      h.daemon.signal('SIGKILL');
      await h.daemon.exited;
      // two clients leave while no daemon is watching
      await early[0]!.stop();
      await early[1]!.stop();
      await h.restartDaemon();
      const stormClients = await Promise.all(storm);
      await Promise.all(stormClients.map(eventuallyConnected));
      const connected = [early[2]!, ...stormClients].map((c) => c.commonName).sort();
      await waitFor(
        'exactly one open record per connected client, none for those that left',
        () => {
          const open = rows(dir).filter((r) => r.ended_at === null);
          return JSON.stringify(open.map((r) => r.common_name).sort()) === JSON.stringify(connected);
        },
        { timeoutMs: 60_000 },
      ).catch((err: Error) => {
        const open = rows(dir)
          .filter((r) => r.ended_at === null)
          .map((r) => r.common_name);
        const odd = rows(dir).filter((r) => connected.includes(r.common_name) && open.filter((n) => n === r.common_name).length !== 1);
        throw new Error(`${err.message}: open records ${JSON.stringify(open.sort())}; records out of place ${JSON.stringify(odd)}`);
      });
      const left = rows(dir).filter((r) => r.common_name === 'early-1' || r.common_name === 'early-2');
      assert.equal(left.length, 2);
      assert.ok(
        left.every((r) => r.ended_at !== null),
        'the clients that left are closed',
      );
      // a spool keeps their disconnects; without one OpenVPN may still have told the dying
      // daemon, or the restarted one finds them gone from status
      for (const r of left)
        assert.ok(CAPS[mode].spool ? r.end_reason === 'disconnect' : ['disconnect', 'missed'].includes(r.end_reason ?? ''), String(r.end_reason));
    });
  });
}

describe('accounting with PostgreSQL', () => {
  test('sessions and denials land in a shared PostgreSQL store through real OpenVPN', async (t) => {
    const pg = await startPostgres(t);
    const dir = await storeDir(t);
    const h = await accountingLab(t, 'management', dir, [], pg.yaml);
    const bob = await client(h, 'bob');
    await bob.waitConnected();
    const eve = await client(h, 'deny-eve');
    await eve.waitAuthFailed();
    const store = await PostgresStore.open({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, 'password-file': pg.passwordFile, pool: 1 });
    t.after(() => store.close());
    await bob.stop();
    const [row] = await waitFor('bob closed', async () => {
      const r = await store.sessions({ user: 'bob' });
      return r[0]?.endedAt !== undefined ? r : undefined;
    });
    assert.equal(row?.endReason, 'disconnect');
    assert.ok((row?.bytesIn ?? 0) > 0);
    const denials = await store.denials({});
    assert.ok(denials.some((d) => d.commonName === 'deny-eve' && d.reason === 'recorder refuses deny-eve'));
  });
});

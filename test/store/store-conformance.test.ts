/**
 * One suite, both backends: SQLite (a temporary file) and PostgreSQL (a real server started for
 * the test) must behave the same.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { SessionStart, Store } from '../../src/store/store.ts';
import { STORE_BACKENDS } from '../support/store-backends.ts';

const start = (o: Partial<SessionStart> = {}): SessionStart => ({
  id: randomUUID(),
  instance: 'vpn1',
  commonName: 'alice',
  username: 'alice@corp',
  realAddress: '198.51.100.7',
  realPort: 51234,
  vpnAddress: '10.8.0.2',
  startedAt: 1_700_000_000_000,
  ...o,
});
const end = { endedAt: 1_700_000_060_000, duration: 60, bytesIn: 1234, bytesOut: 5678, reason: 'disconnect' as const };

for (const [name, open, skip] of STORE_BACKENDS) {
  describe(`store conformance: ${name}`, { skip }, () => {
    test('stats count the waits on the database: a write adds at least one, a claim at least one more', async (t) => {
      const { store } = await open(t);
      const before = store.stats().roundTrips;
      await store.openSession(start());
      const afterOpen = store.stats().roundTrips;
      assert.ok(afterOpen > before, `${afterOpen} after ${before}`);
      await store.claimSession(start({ commonName: 'bob', username: undefined }), { max: 2, refuse: true });
      assert.ok(store.stats().roundTrips > afterOpen);
    });

    test('a session round-trips: opened, closed by id with bytes and duration, listed', async (t) => {
      const { store } = await open(t);
      const s = start({ vpnAddress6: 'fd00::2' });
      await store.openSession(s);
      assert.equal(await store.countOpen('alice'), 1);
      assert.equal(await store.countOpen('alice@corp'), 1);
      await store.setAddresses(s.id, { vpnAddress: '10.8.0.5' });
      assert.equal((await store.openSessions('vpn1'))[0]?.vpnAddress, '10.8.0.5');
      assert.equal((await store.openSessions('vpn1'))[0]?.vpnAddress6, 'fd00::2', 'an address not given is kept');
      assert.equal(await store.closeSession(s.id, s, { ...end, vpnAddress: '10.8.0.9' }), true);
      assert.equal(await store.closeSession(s.id, s, end), false, 'closing twice does nothing');
      const [row] = await store.sessions({ user: 'alice' });
      assert.deepEqual(row, { ...s, vpnAddress: '10.8.0.9', endedAt: end.endedAt, duration: 60, bytesIn: 1234, bytesOut: 5678, endReason: 'disconnect' });
      assert.equal(await store.countOpen('alice'), 0);
    });

    test('after a restart a disconnect finds its open session by the connection', async (t) => {
      const { store } = await open(t);
      const older = start({ startedAt: 1000 });
      const newer = start({ startedAt: 2000 });
      const other = start({ realPort: 40000, startedAt: 3000 });
      for (const s of [older, newer, other]) await store.openSession(s);
      assert.equal(await store.closeSession(undefined, { instance: 'vpn1', commonName: 'alice', realAddress: '198.51.100.7', realPort: 51234 }, end), true);
      const rows = await store.sessions({});
      assert.equal(rows.find((r) => r.id === newer.id)?.endReason, 'disconnect');
      assert.equal(rows.find((r) => r.id === older.id)?.endReason, 'missed', 'ended when the newer connect came');
      assert.equal(rows.find((r) => r.id === other.id)?.endedAt, undefined);
      assert.deepEqual(
        (await store.openSessions('vpn1')).map((r) => r.id),
        [other.id],
      );
      assert.deepEqual(await store.openSessions('vpn2'), []);
      assert.equal(await store.closeSession(undefined, { instance: 'vpn1', commonName: 'nobody-here' }, end), false);
    });

    test("a re-authentication's groups replace those of the connection's open record; a closed or unknown connection changes nothing", async (t) => {
      const { store } = await open(t);
      const s = start({ groups: ['vpn-admins'] });
      await store.openSession(s);
      const connection = { instance: 'vpn1', commonName: 'alice', realAddress: '198.51.100.7', realPort: 51234 };
      assert.equal(await store.setGroups(connection, ['Domain Users', 'finance']), true);
      assert.deepEqual((await store.openSessions('vpn1'))[0]?.groups, ['Domain Users', 'finance']);
      assert.equal(await store.setGroups(connection, []), true);
      assert.equal((await store.openSessions('vpn1'))[0]?.groups, undefined, 'no groups left');
      assert.equal(await store.setGroups({ ...connection, realPort: 1 }, ['x']), false);
      await store.closeSession(s.id, s, end);
      assert.equal(await store.setGroups(connection, ['late']), false, 'a closed record keeps the groups it ended with');
      assert.equal((await store.sessions({}))[0]?.groups, undefined);
    });

    test('a new connect on a connection with an open record ends that record as missed; a connection has one open record', async (t) => {
      const { store } = await open(t);
      const stale = start();
      await store.openSession(stale);
      const elsewhere = start({ realPort: 4001 });
      await store.openSession(elsewhere);
      // the daemon died between recording the connect and answering it; OpenVPN ran it again
      const again = start({ startedAt: stale.startedAt + 30_000 });
      await store.openSession(again);
      await store.openSession(again);
      const byId = new Map((await store.sessions({})).map((r) => [r.id, r]));
      assert.equal(byId.size, 3);
      assert.deepEqual([byId.get(stale.id)?.endReason, byId.get(stale.id)?.endedAt, byId.get(stale.id)?.duration], ['missed', again.startedAt, 30]);
      assert.equal(byId.get(again.id)?.endedAt, undefined);
      assert.equal(byId.get(elsewhere.id)?.endedAt, undefined, 'another port is another connection');
      // the superseded record does not count against a limit: the same connection claims again
      const third = start({ startedAt: again.startedAt + 1000 });
      const claim = await store.claimSession(third, { max: 2, refuse: true });
      assert.equal(claim.recorded, true);
      assert.deepEqual(
        claim.others.map((r) => r.id),
        [elsewhere.id],
      );
      assert.equal((await store.sessions({})).find((r) => r.id === again.id)?.endReason, 'missed');
    });

    test('history filters: user, instance, time window, open only; newest first', async (t) => {
      const { store } = await open(t);
      const a = start({ startedAt: 1000 });
      const b = start({ commonName: 'bob', username: undefined, instance: 'vpn2', startedAt: 2000 });
      const c = start({ commonName: 'carol', username: undefined, startedAt: 5000 });
      for (const s of [a, b, c]) await store.openSession(s);
      await store.closeSession(a.id, a, { ...end, endedAt: 1500 });
      const ids = async (q: Parameters<Store['sessions']>[0]) => (await store.sessions(q)).map((r) => r.commonName);
      assert.deepEqual(await ids({}), ['carol', 'bob', 'alice']);
      assert.deepEqual(await ids({ user: 'alice@corp' }), ['alice']);
      assert.deepEqual(await ids({ instance: 'vpn2' }), ['bob']);
      assert.deepEqual(await ids({ since: 1600 }), ['carol', 'bob'], 'alice ended before');
      assert.deepEqual(await ids({ until: 3000 }), ['bob', 'alice']);
      assert.deepEqual(await ids({ openOnly: true }), ['carol', 'bob']);
      assert.deepEqual(await ids({ limit: 1 }), ['carol']);
      assert.equal(await store.countOpen('carol'), 1);
    });

    test('denials are recorded with their reason and plugin', async (t) => {
      const { store } = await open(t);
      await store.recordDenial({
        at: 10,
        instance: 'vpn1',
        event: 'client-connect',
        commonName: 'eve',
        realAddress: '203.0.113.9',
        realPort: 1,
        reason: 'not on the list',
        plugin: 'deny-list',
      });
      await store.recordDenial({ at: 20, instance: 'vpn2', event: 'user-pass-verify', username: 'mallory', reason: 'bad password' });
      assert.deepEqual(
        (await store.denials({})).map((d) => [d.at, d.event, d.commonName ?? d.username, d.reason, d.plugin]),
        [
          [20, 'user-pass-verify', 'mallory', 'bad password', undefined],
          [10, 'client-connect', 'eve', 'not on the list', 'deny-list'],
        ],
      );
      assert.equal((await store.denials({ instance: 'vpn1' })).length, 1);
      assert.equal((await store.denials({ since: 15 })).length, 1);
    });

    test('writes started at the same moment each succeed or fail alone (a storm of connects, one bad write among them)', async (t) => {
      const { store } = await open(t);
      const starts = Array.from({ length: 50 }, (_, i) => start({ commonName: `storm-${i}`, username: undefined, realPort: 10_000 + i }));
      const results = await Promise.allSettled([
        ...starts.slice(0, 25).map((s) => store.openSession(s)),
        // a denial without its reason breaks the table's NOT NULL rule
        store.recordDenial({ at: 1, instance: 'vpn1', event: 'client-connect', reason: null as unknown as string }),
        ...starts.slice(25).map((s) => store.openSession(s)),
        store.setAddresses(starts[0]!.id, { vpnAddress: '10.8.0.99' }),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        [...Array(25).fill('fulfilled'), 'rejected', ...Array(26).fill('fulfilled')],
      );
      assert.equal((await store.openSessions('vpn1')).length, 50);
      assert.equal((await store.sessions({ user: 'storm-0' }))[0]?.vpnAddress, '10.8.0.99');
      assert.equal((await store.denials({})).length, 0);
      // the record already holds the address: nothing changes
      await store.setAddresses(starts[0]!.id, { vpnAddress: '10.8.0.99' });
      assert.equal((await store.sessions({ user: 'storm-0' }))[0]?.vpnAddress, '10.8.0.99');
    });

    test('hostile names are stored as data, exactly', async (t) => {
      const { store } = await open(t);
      for (const cn of ["x'; DROP TABLE sessions; --", 'Zoë 雪 "quoted" \\ $(x)', 'x'.repeat(64)]) {
        const s = start({ commonName: cn, username: cn });
        await store.openSession(s);
        assert.equal((await store.sessions({ user: cn }))[0]?.commonName, cn);
      }
      assert.equal((await store.sessions({})).length, 3);
    });

    test("a session's groups are recorded with it, names as data, in order; a session in none records none", async (t) => {
      const { store } = await open(t);
      const groups = ['vpn-admins', 'Domain Admins', `x'); DROP TABLE sessions; -- "q" \\ ${'g'.repeat(256)}`, 'Zoë 雪', '["not", "json"]'];
      const s = start({ groups });
      await store.openSession(s);
      const claimed = start({ id: randomUUID(), commonName: 'bob', username: 'bob', realPort: 2, groups: ['ops'] });
      assert.equal((await store.claimSession(claimed, { max: 1, refuse: true })).recorded, true);
      const none = start({ id: randomUUID(), commonName: 'carol', username: 'carol', realPort: 3, groups: [] });
      await store.openSession(none);
      const byId = new Map((await store.sessions({})).map((r) => [r.id, r]));
      assert.deepEqual(byId.get(s.id)?.groups, groups);
      assert.deepEqual(byId.get(claimed.id)?.groups, ['ops']);
      assert.equal(byId.get(none.id)?.groups, undefined);
      await store.closeSession(s.id, undefined, end);
      assert.deepEqual((await store.sessions({ user: 'alice' }))[0]?.groups, groups, 'a closed record keeps them');
      assert.deepEqual((await store.openSessions('vpn1')).find((r) => r.id === claimed.id)?.groups, ['ops']);
    });

    test('session limits: the check and the record are one step, also for connects at the same moment from two daemons', async (t) => {
      const { store, reopen } = await open(t);
      const other = await reopen();
      const first = start({ startedAt: 1 });
      assert.deepEqual(await store.claimSession(first, { max: 1, refuse: true }), { recorded: true, others: [] });
      await store.openSession(first); // the accounting plugin's own record of it changes nothing
      const refused = await store.claimSession(start({ commonName: 'laptop' }), { max: 1, refuse: true });
      assert.equal(refused.recorded, false, 'the username counts, not the common name');
      assert.deepEqual(
        refused.others.map((r) => r.id),
        [first.id],
      );
      const over = await store.claimSession(start({ startedAt: 2, realPort: 4002 }), { max: 1, refuse: false });
      assert.equal(over.recorded, true);
      assert.equal(await store.countOpen('alice@corp'), 2);
      // without a username the common name is the user
      const racers = Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? store : other).claimSession(start({ username: undefined, commonName: 'bob', realPort: 5000 + i }), { max: 3, refuse: true }),
      );
      assert.equal((await Promise.all(racers)).filter((r) => r.recorded).length, 3);
      assert.equal(await store.countOpen('bob'), 3);
    });

    test('a killed session keeps "killed" as how it ended; kill requests reach their instance once', async (t) => {
      const { store, reopen } = await open(t);
      const s = start();
      await store.openSession(s);
      await store.markKilled(s.id);
      await store.closeSession(s.id, s, { endedAt: s.startedAt + 1000, duration: 1, bytesIn: 5, bytesOut: 6, reason: 'disconnect' });
      assert.equal((await store.sessions({}))[0]?.endReason, 'killed');
      // a session refused after it was recorded leaves no record; a closed one is kept
      const refused = start({ id: 'refused' });
      await store.openSession(refused);
      await store.forgetSession(refused.id);
      await store.forgetSession(s.id);
      assert.deepEqual(
        (await store.sessions({})).map((r) => r.id),
        [s.id],
      );
      const other = await reopen();
      const who = { commonName: 'alice', realAddress: '198.51.100.7', realPort: 4000 };
      await store.requestKill({ ...who, sessionId: 'old', instance: 'vpn2', reason: 'stale', requestedAt: 100 });
      await store.requestKill({ ...who, sessionId: 'a', instance: 'vpn2', reason: 'too many', requestedAt: 5000 });
      await store.requestKill({ commonName: 'bob', sessionId: 'b', instance: 'vpn3', reason: 'too many', requestedAt: 5000 });
      assert.deepEqual(await other.takeKillRequests(['vpn1'], 1000), []);
      assert.deepEqual(await other.takeKillRequests(['vpn2'], 1000), [{ ...who, sessionId: 'a', instance: 'vpn2', reason: 'too many', requestedAt: 5000 }]);
      assert.deepEqual(await store.takeKillRequests(['vpn2'], 1000), [], 'taken once');
      assert.equal((await store.takeKillRequests(['vpn3', 'vpn2'], 1000)).length, 1);
    });

    test('prune removes closed sessions and denials older than the cutoff, in batches; never an open session; a dry run only counts', async (t) => {
      const { store } = await open(t);
      const day = 86_400_000;
      const cutoff = 1_700_000_000_000;
      const old = Array.from({ length: 5 }, (_, i) => start({ commonName: `old-${i}`, username: undefined, realPort: 100 + i, startedAt: cutoff - 10 * day }));
      // started long ago and still connected: kept, however old
      const stillOpen = start({ commonName: 'forever', username: undefined, realPort: 200, startedAt: cutoff - 400 * day });
      // started before the cutoff, ended after it: kept
      const straddles = start({ commonName: 'straddles', username: undefined, realPort: 201, startedAt: cutoff - day });
      const recent = start({ commonName: 'recent', username: undefined, realPort: 202, startedAt: cutoff + day });
      for (const s of [...old, stillOpen, straddles, recent]) await store.openSession(s);
      for (const s of old) await store.closeSession(s.id, undefined, { ...end, endedAt: s.startedAt + 60_000 });
      await store.closeSession(straddles.id, undefined, { ...end, endedAt: cutoff + 1000 });
      await store.closeSession(recent.id, undefined, { ...end, endedAt: cutoff + 2 * day });
      for (const at of [cutoff - 3 * day, cutoff - 2 * day, cutoff - 1, cutoff, cutoff + 1])
        await store.recordDenial({ at, instance: 'vpn1', event: 'client-connect', commonName: `denied-${at}`, reason: 'no' });
      const names = async () => (await store.sessions({})).map((r) => r.commonName).sort();
      const before = await names();

      assert.deepEqual(await store.prune(cutoff, { dryRun: true }), { sessions: 5, denials: 3 });
      assert.deepEqual(await names(), before, 'a dry run removes nothing');
      assert.equal((await store.denials({})).length, 5);

      assert.deepEqual(await store.prune(cutoff, { batch: 2 }), { sessions: 5, denials: 3 });
      assert.deepEqual(await names(), ['forever', 'recent', 'straddles']);
      assert.deepEqual(
        (await store.denials({})).map((d) => d.at),
        [cutoff + 1, cutoff],
      );
      assert.equal(await store.countOpen('forever'), 1);
      assert.deepEqual(await store.prune(cutoff), { sessions: 0, denials: 0 }, 'nothing left to remove');
    });

    test('migrations run once: opening the store again keeps its records', async (t) => {
      const { store, reopen } = await open(t);
      const s = start();
      await store.openSession(s);
      const again = await reopen();
      assert.deepEqual(
        (await again.sessions({})).map((r) => r.id),
        [s.id],
      );
    });
  });
}

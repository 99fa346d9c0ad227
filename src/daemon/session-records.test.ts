import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { z } from 'zod';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../events/event-map.ts';
import { createLogger } from '../logger.ts';
import accounting from '../plugins/builtin/accounting/index.ts';
import sessionLimit from '../plugins/builtin/session-limit/index.ts';
import type { LiveSession, PluginInstance, Services } from '../plugins/plugin-api.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { StoreSessionRecords } from './session-records.ts';

/** A store on a fresh file whose calls are counted by method name. */
async function countedStore(t: TestContext): Promise<{ store: Store; calls: Map<string, number> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-records-'));
  const real = new SqliteStore(join(dir, 'a.db'));
  t.after(async () => {
    await real.close();
    await rm(dir, { recursive: true, force: true });
  });
  const calls = new Map<string, number>();
  const store = new Proxy(real, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(key), (calls.get(String(key)) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { store, calls };
}

const session: LiveSession = {
  id: 's1',
  instance: 'vpn1',
  commonName: 'alice',
  realAddress: '198.51.100.7',
  realPort: 40000,
  connectedAt: Date.now() - 1000,
  groups: [],
};

const disconnectOf = (s: LiveSession) =>
  ({
    name: 'client-disconnect',
    instance: s.instance,
    commonName: s.commonName,
    realAddress: s.realAddress,
    realPort: s.realPort,
    bytesReceived: 10,
    bytesSent: 20,
    duration: 1,
    missed: false,
  }) as ClientDisconnectEvent;

test('accounting and session-limit both hand over a disconnect and a rebuild: the record is closed once', async (t) => {
  const { store, calls } = await countedStore(t);
  const live: LiveSession[] = [];
  const services: Services = { records: new StoreSessionRecords(store), sessions: { list: () => live }, kill: async () => {} };
  const base = { log: createLogger('silent'), instance: 'vpn1', configDir: '/', signal: new AbortController().signal, services };
  const limit: PluginInstance = await sessionLimit.setup({ ...base, options: sessionLimit.options!(z).parse({ max: 1 }) });
  t.after(() => limit.close?.());
  const acct: PluginInstance = await accounting.setup({ ...base, options: undefined });

  const connect = { name: 'client-connect', instance: 'vpn1', commonName: 'alice', reauth: false } as ClientConnectEvent;
  await limit.decided!(connect, { verdict: 'accept', config: [] }, session);
  live.push(session);

  const event = disconnectOf(session);
  const ctx = { state: new Map() } as never;
  await Promise.all([limit['client-disconnect']!(event, ctx), acct['client-disconnect']!(event, ctx)]);
  assert.equal(calls.get('closeSession'), 1, 'one write for one disconnect');
  const [record] = await store.sessions({ user: 'alice' });
  assert.equal(record?.endReason, 'disconnect');
  assert.equal(record?.bytesIn, 10);

  // a second connection of the same user left while no daemon watched: one pass over the open records
  const unseen: LiveSession = { ...session, id: 's2', realPort: 40001, connectedAt: Date.now() - 60_000 };
  await limit.decided!(connect, { verdict: 'accept', config: [] }, unseen);
  const rebuiltLive: LiveSession[] = [];
  await limit.sessionsRebuilt!('vpn1', rebuiltLive, Date.now());
  await acct.sessionsRebuilt!('vpn1', rebuiltLive, Date.now());
  assert.equal(calls.get('openSessions'), 1, 'one look at the open records for one rebuild');
  assert.equal((await store.sessions({ user: 'alice' })).find((r) => r.id === 's2')?.endReason, 'missed');
});

test('session-limit then accounting at a connect: the claim records the session, the open writes nothing more; without a claim the open writes', async (t) => {
  const { store, calls } = await countedStore(t);
  const live: LiveSession[] = [];
  const services: Services = { records: new StoreSessionRecords(store), sessions: { list: () => live }, kill: async () => {} };
  const base = { log: createLogger('silent'), instance: 'vpn1', configDir: '/', signal: new AbortController().signal, services };
  const limit: PluginInstance = await sessionLimit.setup({ ...base, options: sessionLimit.options!(z).parse({ max: 2 }) });
  t.after(() => limit.close?.());
  const acct: PluginInstance = await accounting.setup({ ...base, options: undefined });
  const connect = { name: 'client-connect', instance: 'vpn1', commonName: 'alice', reauth: false } as ClientConnectEvent;
  await limit.decided!(connect, { verdict: 'accept', config: [] }, session);
  await acct.decided!(connect, { verdict: 'accept', config: [] }, session);
  assert.equal(calls.get('claimSession'), 1);
  assert.equal(calls.get('openSession'), undefined, 'the claimed session is not written twice');
  assert.deepEqual(
    (await store.sessions({ user: 'alice' })).map((r) => [r.id, r.endedAt]),
    [['s1', undefined]],
  );
  // a session no claim recorded: its open writes it
  const other: LiveSession = { ...session, id: 's2', commonName: 'bob', realPort: 40001 };
  await acct.decided!(connect, { verdict: 'accept', config: [] }, other);
  assert.equal(calls.get('openSession'), 1);
  assert.equal((await store.sessions({ user: 'bob' })).length, 1);
});

test('a close that failed is tried again by the next plugin handing over the same disconnect', async (t) => {
  const { store } = await countedStore(t);
  await store.openSession({ id: 's1', instance: 'vpn1', commonName: 'alice', realAddress: '198.51.100.7', realPort: 40000, startedAt: Date.now() });
  let fail = true;
  const flaky = new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'closeSession' && fail) {
        fail = false;
        return async () => {
          throw new Error('database is locked');
        };
      }
      return Reflect.get(target, key, receiver);
    },
  });
  const records = new StoreSessionRecords(flaky);
  const event = disconnectOf(session);
  await assert.rejects(records.close(event), /locked/);
  assert.equal(await records.close(event), true);
  assert.equal(await records.close(event), true, 'the same event: the kept result');
});

test('a rebuild finds the record of a client that had no real address by its connection: listed, it stays open; not listed, it is closed as missed', async (t) => {
  const { store } = await countedStore(t);
  const records = new StoreSessionRecords(store);
  const nowhere: LiveSession = { id: 's1', instance: 'vpn1', commonName: 'alice', connectedAt: Date.now() - 60_000, groups: [] };
  await records.open(nowhere);
  const [kept] = await store.openSessions('vpn1');
  assert.equal(kept?.realAddress, undefined, 'the store keeps no address');
  // the same client listed anew (after a restart: a new id)
  assert.equal(await records.closeMissed('vpn1', [{ ...nowhere, id: 's9' }], Date.now()), 0);
  assert.equal((await store.openSessions('vpn1')).length, 1, 'a listed client keeps its record open');
  assert.equal(await records.closeMissed('vpn1', [], Date.now()), 1);
  assert.equal((await store.sessions({ user: 'alice' }))[0]?.endReason, 'missed');
});

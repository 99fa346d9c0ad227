import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../../../logger.ts';
import { SqliteStore } from '../../../store/sqlite-store.ts';
import type { WebLoginStates } from '../../plugin-api.ts';
import type { LoginResult } from './pending-logins.ts';
import { SharedLogins } from './shared-logins.ts';

const ALICE = { instance: 'north', commonName: 'c-alice', realAddress: '192.0.2.10', realPort: 40001 };
const BOB = { instance: 'north', commonName: 'c-bob', realAddress: '192.0.2.11', realPort: 40002 };

/** Two daemons sharing one store (SQLite here: the steps are the same as in PostgreSQL, see the store's conformance test). */
async function twoDaemons(t: TestContext, o: { sameAddress?: boolean; now?: () => number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-shared-logins-'));
  const store = new SqliteStore(join(dir, 'a.db'));
  const log = createLogger('silent');
  const daemon = () => new SharedLogins({ states: store.webLogins, sameAddress: o.sameAddress ?? false, log, pollMs: 20, ...(o.now ? { now: o.now } : {}) });
  const a = daemon();
  const b = daemon();
  t.after(async () => {
    a.cancelAll('test over');
    b.cancelAll('test over');
    // let the ends reach the store before it closes
    await new Promise((r) => setTimeout(r, 50));
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { a, b, store };
}

test('a login opened by one daemon is completed through the other: its own client is admitted, once; a replay is refused', async (t) => {
  const { a, b } = await twoDaemons(t);
  const alice = await a.open(ALICE, 60_000);
  const bob = await a.open(BOB, 60_000);
  const started = await b.start(alice.id, '198.51.100.1');
  assert.ok(started.ok);
  assert.deepEqual(started.login.binding, ALICE, 'bound to the client it was opened for');
  assert.deepEqual(await a.start(alice.id, '198.51.100.1'), { ok: false, reason: 'this login link was already used' });
  assert.deepEqual(await alice.result, { ok: false, reason: 'the login link was opened twice' }, 'a second visit refuses the client');

  const s = await b.start(bob.id, '198.51.100.1');
  assert.ok(s.ok);
  const done = await b.finish(s.login.state, s.login.browser, undefined);
  assert.ok(done.ok);
  assert.deepEqual(done.login.binding, BOB);
  assert.equal(done.login.verifier, s.login.verifier, 'the PKCE verifier reaches the daemon that exchanges the code');
  const outcome: LoginResult = { ok: true, username: 'bob', groups: ['vpn-users'], refreshToken: 'rt' };
  assert.equal(await done.login.settle(outcome), true);
  assert.deepEqual(await bob.result, outcome, "the owner's waiting client hears it");
  assert.equal(await done.login.settle({ ok: false, reason: 'late' }), false);
  assert.deepEqual(await a.finish(s.login.state, s.login.browser, undefined), {
    ok: false,
    reason: 'this login was already completed (a replayed callback)',
  });
  assert.deepEqual(await b.finish('forged-state', s.login.browser, undefined), { ok: false, reason: 'unknown or expired login state' });
  assert.equal(a.size, 0);
});

test('another browser, another address, or the end of the wait: the callback is refused with the reason and the client hears it', async (t) => {
  let now = 1_000_000;
  const { a, b } = await twoDaemons(t, { sameAddress: true, now: () => now });
  const alice = await a.open(ALICE, 30_000);
  const s = await b.start(alice.id, ALICE.realAddress);
  assert.ok(s.ok);
  const reason = 'the login came back in another browser than the one that started it';
  assert.deepEqual(await b.finish(s.login.state, 'another-browser', ALICE.realAddress), { ok: false, reason });
  assert.deepEqual(await alice.result, { ok: false, reason });

  const bob = await a.open(BOB, 30_000);
  const mismatch = "the browser (198.51.100.1) is not at the VPN client's address (192.0.2.11)";
  assert.deepEqual(await b.start(bob.id, '198.51.100.1'), { ok: false, reason: mismatch }, "the owner's same-address rule holds on the other daemon");
  assert.deepEqual(await bob.result, { ok: false, reason: mismatch });

  const carol = await a.open({ ...ALICE, commonName: 'c-carol', realPort: 40003 }, 30_000);
  const c = await b.start(carol.id, ALICE.realAddress);
  assert.ok(c.ok);
  now += 30_001;
  assert.deepEqual(await b.finish(c.login.state, c.login.browser, ALICE.realAddress), { ok: false, reason: 'the login took too long (its state expired)' });
  assert.deepEqual(await carol.result, { ok: false, reason: 'the login took too long (its state expired)' });
});

test('a client that stopped waiting is not admitted by a late callback; its login is gone from the store', async (t) => {
  const { a, b } = await twoDaemons(t);
  const alice = await a.open(ALICE, 60_000);
  const s = await b.start(alice.id, undefined);
  assert.ok(s.ok);
  alice.cancel('the wait for the login was abandoned');
  assert.deepEqual(await alice.result, { ok: false, reason: 'the wait for the login was abandoned' });
  // the owner removes the row as the wait ends
  let done = await b.finish(s.login.state, s.login.browser, undefined);
  for (let i = 0; i < 50 && done.ok; i++) {
    await new Promise((r) => setTimeout(r, 20));
    done = await b.finish(s.login.state, s.login.browser, undefined);
  }
  assert.ok(!done.ok);
  assert.match(done.reason, /unknown or expired login state|already completed/);
  assert.deepEqual(await b.start(alice.id, undefined), { ok: false, reason: 'this login link is unknown or has expired' });
});

test('a login the store cannot record is not opened, and no client waits for it', async (t) => {
  // only open is reached
  const failing = { open: () => Promise.reject(new Error('connection refused')) } as unknown as WebLoginStates;
  const logins = new SharedLogins({ states: failing, sameAddress: false, log: createLogger('silent'), pollMs: 20 });
  t.after(() => logins.cancelAll('test over'));
  await assert.rejects(logins.open(ALICE, 60_000), /connection refused/);
  assert.equal(logins.size, 0);
});

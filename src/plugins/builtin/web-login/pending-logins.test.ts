import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserAddress } from './browser-address.ts';
import { PendingLogins } from './pending-logins.ts';

const ALICE = { instance: 'e2e', commonName: 'c-alice', realAddress: '192.0.2.10', realPort: 40001 };

test('a login link starts once, its callback finishes once, in the same browser, and settles exactly its own client', async () => {
  const logins = new PendingLogins();
  const a = logins.open(ALICE, 60_000);
  const b = logins.open({ ...ALICE, commonName: 'c-bob', realPort: 40002 }, 60_000);
  assert.notEqual(a.id, b.id);
  assert.match(a.id, /^[\w-]{22}$/, '128 random bits, URL-safe');

  const started = logins.start(a.id, '198.51.100.1', false);
  assert.ok(started.ok);
  assert.deepEqual(started.login.binding, ALICE, 'bound to the client it was opened for');
  assert.notEqual(started.login.state, a.id, 'the OAuth state is not the link');

  const again = logins.start(a.id, '198.51.100.1', false);
  assert.deepEqual(again, { ok: false, reason: 'this login link was already used' });
  // opening the link twice means someone else may hold it: that client is refused
  assert.deepEqual(await a.result, { ok: false, reason: 'the login link was opened twice' });

  const s = logins.start(b.id, undefined, false);
  assert.ok(s.ok);
  assert.deepEqual(logins.finish(s.login.state, 'another-browser', undefined, false), {
    ok: false,
    reason: 'the login came back in another browser than the one that started it',
  });
  assert.deepEqual(await b.result, { ok: false, reason: 'the login came back in another browser than the one that started it' });
  assert.equal(logins.size, 0, 'settled logins are gone');
});

test('a replayed callback is refused as such; an unknown state and an unknown link are refused', async () => {
  const logins = new PendingLogins();
  const a = logins.open(ALICE, 60_000);
  const s = logins.start(a.id, undefined, false);
  assert.ok(s.ok);
  const done = logins.finish(s.login.state, s.login.browser, undefined, false);
  assert.ok(done.ok);
  done.login.settle({ ok: true, username: 'alice', groups: ['vpn-users'] });
  assert.deepEqual(await a.result, { ok: true, username: 'alice', groups: ['vpn-users'] });
  // a second settle changes nothing
  done.login.settle({ ok: false, reason: 'late' });
  assert.deepEqual(logins.finish(s.login.state, s.login.browser, undefined, false), {
    ok: false,
    reason: 'this login was already completed (a replayed callback)',
  });
  assert.deepEqual(logins.finish('forged-state', s.login.browser, undefined, false), { ok: false, reason: 'unknown or expired login state' });
  assert.deepEqual(logins.start('no-such-link', undefined, false), { ok: false, reason: 'this login link is unknown or has expired' });
  assert.deepEqual(logins.start(a.id, undefined, false), { ok: false, reason: 'this login link was already used' });
});

test('a login expires with the client’s wait: the client is refused, the link and a late callback are refused', async () => {
  let now = 1_000_000;
  const logins = new PendingLogins(() => now);
  const late = logins.open(ALICE, 30_000);
  const s = logins.start(late.id, undefined, false);
  assert.ok(s.ok);
  now += 31_000;
  assert.deepEqual(logins.finish(s.login.state, s.login.browser, undefined, false), { ok: false, reason: 'the login took too long (its state expired)' });
  assert.deepEqual(await late.result, { ok: false, reason: 'the login took too long (its state expired)' });

  const idle = logins.open(ALICE, 30_000);
  now += 31_000;
  assert.deepEqual(logins.start(idle.id, undefined, false), { ok: false, reason: 'this login link has expired' });
  idle.cancel('the wait ended');

  const never = new PendingLogins().open(ALICE, 50);
  assert.deepEqual(await never.result, { ok: false, reason: 'no login within 0 s' });
});

test('require-same-address: the browser must come from the VPN client’s real address (IPv4-mapped forms are the same address)', async () => {
  const logins = new PendingLogins();
  const a = logins.open(ALICE, 60_000);
  assert.ok(logins.start(a.id, '::ffff:192.0.2.10', true).ok);
  const b = logins.open(ALICE, 60_000);
  assert.deepEqual(logins.start(b.id, '203.0.113.5', true), {
    ok: false,
    reason: "the browser (203.0.113.5) is not at the VPN client's address (192.0.2.10)",
  });
  assert.equal((await b.result).ok, false, 'the client is refused');
  const c = logins.open(ALICE, 60_000);
  const s = logins.start(c.id, '192.0.2.10', true);
  assert.ok(s.ok);
  assert.equal(logins.finish(s.login.state, s.login.browser, '203.0.113.5', true).ok, false, 'checked again at the callback');
});

test('X-Forwarded-For is believed only from a configured proxy, read from the right', () => {
  const proxies = ['127.0.0.1', '10.0.0.2'];
  assert.equal(browserAddress('198.51.100.7', '192.0.2.10', proxies), '198.51.100.7', 'a browser cannot claim an address');
  assert.equal(browserAddress('127.0.0.1', '192.0.2.10', proxies), '192.0.2.10');
  assert.equal(browserAddress('::ffff:127.0.0.1', '6.6.6.6, 192.0.2.10, 10.0.0.2', proxies), '192.0.2.10', 'the spoofed left part is not read');
  assert.equal(browserAddress('127.0.0.1', undefined, proxies), '127.0.0.1');
  assert.equal(browserAddress('127.0.0.1', 'not-an-address', proxies), undefined, 'garbage matches no client');
  assert.equal(browserAddress(undefined, '192.0.2.10', proxies), undefined);
});

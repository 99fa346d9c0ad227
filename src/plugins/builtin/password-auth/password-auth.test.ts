import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import { hashPassword } from '../../../util/password-hash.ts';
import { createLogger } from '../../../logger.ts';
import type { UserPassVerifyEvent } from '../../../events/event-map.ts';
import type { PluginInstance, Services } from '../../plugin-api.ts';
import { fakeAuthContext, hookUserPassVerify } from '../../../../test/support/fake-auth-context.ts';
import passwordAuth from './index.ts';

const PHP_VECTOR = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'; // rasmuslerdorf

async function setup(t: TestContext, options: Record<string, unknown> = {}, extraLines: string[] = []) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-pwauth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'users'),
    [`alice:${await hashPassword('Alice#Secret1')}:staff`, `bob:${await hashPassword('Bob#Secret2')}`, `rasmus:${PHP_VECTOR}:staff`, ...extraLines, ''].join(
      '\n',
    ),
    { mode: 0o640 },
  );
  const logged: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void logged.push(s) });
  const parsed = passwordAuth.options!(z).parse({ file: 'users', ...options });
  const services = { sessions: { list: () => [] }, kill: async () => undefined } as Services;
  const plugin: PluginInstance = await passwordAuth.setup({
    options: parsed,
    log,
    instance: 'test',
    configDir: dir,
    signal: new AbortController().signal,
    services,
  });
  /** The groups the last login put the client in. */
  const joined: string[] = [];
  const login = async (username: string, password: string, realAddress = '198.51.100.7') => {
    const { ctx, out } = fakeAuthContext({ log });
    await plugin['user-pass-verify']!(hookUserPassVerify(username, password, realAddress), ctx);
    joined.splice(0, joined.length, ...out.groups);
    return out.denied;
  };
  return { dir, login, logged, joined };
}

test('right password accepted; wrong password and unknown user denied with a generic client reason', async (t) => {
  const { login, logged } = await setup(t);
  assert.equal(await login('alice', 'Alice#Secret1'), undefined);
  assert.equal(await login('rasmus', 'rasmuslerdorf'), undefined, 'bcrypt from htpasswd');
  assert.deepEqual(await login('alice', 'Bob#Secret2'), { reason: 'wrong password', clientReason: 'authentication failed' });
  assert.deepEqual(await login('mallory', 'Alice#Secret1'), { reason: 'unknown user', clientReason: 'authentication failed' });
  assert.deepEqual(await login('', ''), { reason: 'unknown user', clientReason: 'authentication failed' });
  assert.ok(!logged.join('').includes('Secret'), `no password in the log: ${logged.join('')}`);
});

test('an accepted user is put in the groups of its users-file line; a refused one in none', async (t) => {
  const { login, joined } = await setup(t, {}, [`carol:${await hashPassword('Carol#Secret3')}:vpn-admins,Ops.Team_2`]);
  assert.equal(await login('carol', 'Carol#Secret3'), undefined);
  assert.deepEqual(joined, ['vpn-admins', 'Ops.Team_2']);
  assert.equal(await login('bob', 'Bob#Secret2'), undefined);
  assert.deepEqual(joined, [], 'a line without groups');
  assert.ok(await login('carol', 'wrong'));
  assert.deepEqual(joined, []);
});

test('a user is locked out after its failures, even with the right password, while others still log in', async (t) => {
  const { login } = await setup(t, { limits: { user: { failures: 3, lockout: '1m' }, address: { failures: 100 } } });
  assert.equal((await login('bob', 'guess-1'))?.reason, 'wrong password');
  assert.equal((await login('bob', 'guess-2'))?.reason, 'wrong password');
  assert.equal((await login('bob', 'guess-3'))?.reason, 'wrong password; user locked out for 60 s');
  const locked = await login('bob', 'Bob#Secret2');
  assert.match(locked!.reason, /^user locked out after repeated failures \(\d+ s left\)$/);
  assert.equal(locked!.clientReason, 'authentication failed');
  assert.equal(await login('alice', 'Alice#Secret1'), undefined);
  // unknown users are limited the same way, so lockouts do not tell who exists
  for (let i = 0; i < 3; i++) await login('ghost', 'x');
  assert.match((await login('ghost', 'x'))!.reason, /^user locked out/);
});

test('an address is locked out after its failures, for every user', async (t) => {
  const { login } = await setup(t, { limits: { user: { failures: 100 }, address: { failures: 3 } } });
  for (const u of ['u1', 'u2']) assert.equal((await login(u, 'x', '203.0.113.9'))?.reason, 'unknown user');
  assert.equal((await login('u3', 'x', '203.0.113.9'))?.reason, 'unknown user; address locked out for 60 s');
  assert.match((await login('alice', 'Alice#Secret1', '203.0.113.9'))!.reason, /^address locked out/);
  assert.equal(await login('alice', 'Alice#Secret1', '203.0.113.10'), undefined);
});

test('a success clears the user failures; allowed groups', async (t) => {
  const { login } = await setup(t, { groups: ['staff'], limits: { user: { failures: 2 } } });
  assert.equal((await login('alice', 'nope'))?.reason, 'wrong password');
  assert.equal(await login('alice', 'Alice#Secret1'), undefined);
  assert.equal((await login('alice', 'nope'))?.reason, 'wrong password', 'the earlier failure was forgotten');
  assert.deepEqual(await login('bob', 'Bob#Secret2'), { reason: 'user is in none of the allowed groups (staff)', clientReason: 'authentication failed' });
});

test('an unknown user costs about what a known user costs', async (t) => {
  const { login } = await setup(t, { limits: { user: { failures: 1000 }, address: { failures: 1000 } } });
  const time = async (user: string) => {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      await login(user, 'wrong');
      samples.push(performance.now() - s);
    }
    return samples.sort((a, b) => a - b)[2]!;
  };
  await time('alice'); // warm up
  const known = await time('alice');
  const unknown = await time('nobody-such');
  assert.ok(unknown > known / 3 && unknown < known * 3, `known ${known.toFixed(1)} ms, unknown ${unknown.toFixed(1)} ms`);
});

test('the logger redacts the password wherever an auth event is logged whole', (t) => {
  const lines: string[] = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(s) });
  const event: UserPassVerifyEvent = {
    name: 'user-pass-verify',
    instance: 'x',
    source: 'management',
    env: { username: 'u', password: 'Leak#Me1' },
    args: [],
    commonName: 'c',
    username: 'u',
    password: 'Leak#Me1',
  };
  log.info(event, 'the event itself');
  log.info({ event }, 'under event');
  log.info({ env: event.env }, 'its env');
  log.child({ plugin: 'p' }).warn({ event, password: event.password }, 'in a child logger');
  assert.equal(lines.length, 4);
  assert.ok(
    lines.every((l) => !l.includes('Leak#Me1')),
    lines.join(''),
  );
  t.diagnostic('redacted in every shape a plugin or the daemon logs it');
});

test('options: a bad users file or options fail setup with the place', async (t) => {
  await assert.rejects(setup(t, {}, ['carol:plaintext']), /users:4: user "carol": unsupported hash/);
  assert.throws(
    () => passwordAuth.options!(z).parse({ file: 'u', limits: { user: { lockout: '10m', 'max-lockout': '1m' } } }),
    /max-lockout must not be shorter than lockout/,
  );
  assert.throws(() => passwordAuth.options!(z).parse({ file: 'u', extra: 1 }), /extra/);
  assert.throws(() => passwordAuth.options!(z).parse({ file: 'u', 'client-reason': 'a\nb' }), /one line/);
});

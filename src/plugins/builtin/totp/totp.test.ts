import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { TOTP } from 'otpauth';
import { z } from 'zod';
import { createLogger } from '../../../logger.ts';
import { parseEvent } from '../../../events/parse-event.ts';
import type { EventSource, UserPassVerifyEvent } from '../../../events/event-map.ts';
import type { Challenge, PluginInstance, Services } from '../../plugin-api.ts';
import { fakeAuthContext } from '../../../../test/support/fake-auth-context.ts';
import { matchingStep, PERIOD_SECONDS, ReplayGuard, totpFor } from './codes.ts';
import { parseSecretsFile, SecretsFile, secretsFileStatProblem } from './secrets-file.ts';
import totp from './index.ts';

const ALICE = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const BOB = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const code = (secret: string, at = Date.now()) => totpFor(secret).generate({ timestamp: at });
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function setup(t: TestContext, options: Record<string, unknown> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-totp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'secrets'), `# users\nalice:${ALICE}\nbob:${BOB}\n`, { mode: 0o640 });
  const logged: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void logged.push(s) });
  const plugin: PluginInstance = await totp.setup({
    options: totp.options!(z).parse({ file: 'secrets', ...options }),
    log,
    instance: 'test',
    configDir: dir,
    signal: new AbortController().signal,
    services: { sessions: { list: () => [] }, kill: async () => undefined } as Services,
  });
  /** One user-pass-verify through the plugin, from the env OpenVPN would give; the deny, if any. */
  const login = async (username: string, password: string, o: { source?: EventSource; answer?: (c: Challenge) => Promise<string>; address?: string } = {}) => {
    const event = parseEvent({
      name: 'user-pass-verify',
      instance: 'test',
      source: o.source ?? 'management',
      env: { username, password, common_name: 'c', untrusted_ip: o.address ?? '198.51.100.7' },
    }) as UserPassVerifyEvent;
    const asked: Challenge[] = [];
    const { ctx, out } = fakeAuthContext({
      log,
      challenge: (c) => {
        asked.push(c);
        return o.answer ? o.answer(c) : Promise.reject(new Error('challenge() cannot reach this client'));
      },
    });
    await plugin['user-pass-verify']!(event, ctx);
    return { denied: out.denied, asked };
  };
  return { dir, login, logged };
}

test('secrets file: user:BASE32 lines; bad lines are refused naming the line, never the secret', () => {
  assert.deepEqual(
    [...parseSecretsFile(`# c\n\nalice:${ALICE}\r\nev"il $(x) 雪:${BOB}\n`, 'f')],
    [
      ['alice', ALICE],
      ['ev"il $(x) 雪', BOB],
    ],
  );
  assert.throws(() => parseSecretsFile(`alice:${ALICE}\nalice:${BOB}\n`, 'f'), /^Error: f:2: user "alice" is listed twice$|f:2: user "alice" is listed twice/);
  assert.throws(
    () => parseSecretsFile('alice:notbase32!\n', 'f'),
    (err: Error) => /f:1: .*base32/.test(err.message) && !err.message.includes('notbase32'),
  );
  assert.throws(() => parseSecretsFile('alice:SHORT\n', 'f'), /f:1:/);
  assert.throws(() => parseSecretsFile(`${ALICE}\n`, 'f'), /f:1: expected user:SECRET/);
  assert.throws(() => parseSecretsFile(`:${ALICE}\n`, 'f'), /f:1: the user name is empty/);
});

test('secrets file: refused when others can read it, its group can write it, a stranger owns it, or it is a link', async (t) => {
  const st = (mode: number, uid = 0) => ({ mode: 0o100000 | mode, uid, isFile: () => true });
  assert.equal(secretsFileStatProblem(st(0o600), 1000), undefined);
  assert.equal(secretsFileStatProblem(st(0o640), 1000), undefined);
  assert.equal(secretsFileStatProblem(st(0o600, 1000), 1000), undefined);
  assert.match(secretsFileStatProblem(st(0o644), 1000) ?? '', /mode 0644 lets others read/);
  assert.match(secretsFileStatProblem(st(0o660), 1000) ?? '', /mode 0660/);
  assert.match(secretsFileStatProblem(st(0o604), 1000) ?? '', /mode 0604/);
  assert.match(secretsFileStatProblem(st(0o600, 1001), 1000) ?? '', /owned by uid 1001/);
  assert.equal(secretsFileStatProblem(st(0o600, 1001), 0), undefined, 'root (check) does not know the daemon user');
  assert.match(secretsFileStatProblem(st(0o644, 1001), 0) ?? '', /mode 0644/);

  const dir = await mkdtemp(join(tmpdir(), 'fxs-totp-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'secrets');
  await writeFile(file, `alice:${ALICE}\n`, { mode: 0o600 });
  await chmod(file, 0o644);
  await assert.rejects(SecretsFile.load(file), /secrets: mode 0644 lets others read/);
  await chmod(file, 0o600);
  await symlink(file, join(dir, 'link'));
  await assert.rejects(SecretsFile.load(join(dir, 'link')), /link: is a symbolic link/);

  // a loaded file that becomes readable by others is not re-read: the previous secrets stay
  const errors: string[] = [];
  const loaded = await SecretsFile.load(file, { onError: (e) => errors.push(e.message) });
  await writeFile(file, `alice:${BOB}\n`);
  await chmod(file, 0o604);
  await loaded.refresh();
  assert.equal(loaded.get('alice'), ALICE);
  assert.match(errors.join(), /mode 0604/);
  await chmod(file, 0o600);
  await loaded.refresh();
  assert.equal(loaded.get('alice'), BOB);
});

test('codes: accepted within the window of steps around now, refused beyond it and when malformed', () => {
  const now = Date.now();
  const step = TOTP.counter({ period: PERIOD_SECONDS, timestamp: now });
  assert.equal(matchingStep(ALICE, code(ALICE, now), now, 1), step);
  assert.equal(matchingStep(ALICE, code(ALICE, now - 30_000), now, 1), step - 1);
  assert.equal(matchingStep(ALICE, code(ALICE, now + 30_000), now, 1), step + 1);
  assert.equal(matchingStep(ALICE, code(ALICE, now - 90_000), now, 1), undefined);
  assert.equal(matchingStep(ALICE, code(ALICE, now - 30_000), now, 0), undefined);
  assert.equal(matchingStep(ALICE, code(BOB, now), now, 1), undefined);
  for (const bad of ['', '12345', '1234567', ' 123456', '12345a', '１２３４５６']) assert.equal(matchingStep(ALICE, bad, now, 1), undefined, bad);
});

test('replay guard: a step is taken once per user, never an earlier one after it, and it stays bounded', () => {
  const now = Date.now();
  const step = TOTP.counter({ period: PERIOD_SECONDS, timestamp: now });
  const g = new ReplayGuard(1, 2);
  assert.equal(g.take('alice', step, now), true);
  assert.equal(g.take('alice', step, now), false);
  assert.equal(g.take('alice', step - 1, now), false);
  assert.equal(g.take('bob', step, now), true, 'per user');
  assert.equal(g.take('alice', step + 1, now), true);
  // full of users whose codes could still be replayed: a new one is refused, nothing forgotten
  assert.equal(g.take('carol', step, now), false);
  assert.equal(g.size, 2);
  // later, their steps are too old to matter: room is made
  const later = now + 5 * 60_000;
  assert.equal(g.take('carol', step + 10, later), true);
  assert.equal(g.size, 1);
});

test('static mode: the code with the password logs in once; wrong, replayed, missing and unenrolled are denied', async (t) => {
  const { login, logged } = await setup(t);
  const now = Date.now();
  const right = code(ALICE, now);
  const scrv1 = (c: string, user = 'alice') => login(user, `SCRV1:${b64('Pw')}:${b64(c)}`);
  assert.equal((await scrv1(right)).denied, undefined);
  assert.deepEqual((await scrv1(right)).denied, { reason: 'TOTP: code already used', clientReason: 'authentication failed' });
  const wrong = right === '000000' ? '111111' : '000000';
  assert.equal((await scrv1(wrong)).denied?.reason, 'TOTP: wrong code');
  assert.equal((await login('alice', 'Pw')).denied?.reason, 'TOTP: no code sent (the client config needs static-challenge)');
  assert.equal((await login('alice', 'SCRV1:bad:base64!')).denied?.reason, 'TOTP: no code sent (the client config needs static-challenge)');
  assert.equal((await scrv1(code(BOB, now), 'carol')).denied?.reason, 'no TOTP secret enrolled for this user');
  // the next step's code (clock drift) is still good once, also typed as apps show it
  const next = code(ALICE, now + 30_000);
  assert.equal((await scrv1(`${next.slice(0, 3)} ${next.slice(3)}`)).denied, undefined);
  assert.ok(!logged.join('').includes(right), 'no code in the log');
});

test('wrong codes lock the user out with the same kind of limits as password-auth; others still log in', async (t) => {
  const { login } = await setup(t, { limits: { user: { failures: 2, lockout: '1m' }, address: { failures: 100 } } });
  const right = code(ALICE);
  const wrong = right === '000000' ? '111111' : '000000';
  const scrv1 = (user: string, c: string) => login(user, `SCRV1:${b64('Pw')}:${b64(c)}`);
  assert.equal((await scrv1('alice', wrong)).denied?.reason, 'TOTP: wrong code');
  assert.equal((await scrv1('alice', wrong)).denied?.reason, 'TOTP: wrong code; user locked out for 60 s');
  assert.match((await scrv1('alice', right)).denied?.reason ?? '', /^TOTP: user locked out after repeated wrong codes \(\d+ s left\)$/);
  assert.equal((await scrv1('bob', code(BOB))).denied, undefined);
});

test('crv1 mode: no code → a CRV1 challenge that the next connect answers, for the same user, once', async (t) => {
  const { login } = await setup(t, { mode: 'crv1', 'challenge-text': 'Code please' });
  const first = await login('alice', 'Alice-Pw');
  assert.equal(first.denied?.reason, 'TOTP: CRV1 challenge sent');
  const m = /^CRV1:R,E:([A-Za-z0-9_-]+):([^:]+):Code please$/.exec(first.denied?.clientReason ?? '');
  assert.ok(m, first.denied?.clientReason);
  assert.equal(Buffer.from(m[2]!, 'base64').toString(), 'alice');
  assert.ok(!first.denied!.clientReason!.includes('Alice-Pw'), 'the password is sealed, not sent');
  // the answer restores the password for the password plugin before it
  const answer = parseEvent({ name: 'user-pass-verify', instance: 'i', source: 'hook', env: { username: 'alice', password: `CRV1::${m[1]}::123` } });
  assert.ok(answer.name === 'user-pass-verify' && answer.password === 'Alice-Pw');
  assert.equal((await login('alice', `CRV1::${m[1]}::${code(ALICE)}`)).denied, undefined);
  assert.equal((await login('alice', `CRV1::${m[1]}::${code(ALICE)}`)).denied?.reason, 'TOTP: code already used');
  assert.equal((await login('bob', `CRV1::${m[1]}::${code(BOB)}`)).denied?.reason, 'TOTP: CRV1 answer refused (other username)');
  assert.equal((await login('bob', `CRV1::forged::${code(BOB)}`)).denied?.reason, 'TOTP: CRV1 answer refused (unknown state)');
});

test('crv1 mode: a challenge too long for OpenVPN management is a plain deny', async (t) => {
  const { login } = await setup(t, { mode: 'crv1' });
  const { denied } = await login('alice', 'P'.repeat(200));
  assert.equal(denied?.reason, 'TOTP: the CRV1 challenge for this username and password is too long for OpenVPN');
  assert.equal(denied?.clientReason, 'authentication failed');
});

test('dynamic mode: the client is asked and its answer checked, in both modes; no answer and a wrong one are denied', async (t) => {
  const { login } = await setup(t, { mode: 'dynamic', 'challenge-timeout': '30s' });
  const ok = await login('alice', 'Pw', { answer: async () => code(ALICE) });
  assert.equal(ok.denied, undefined);
  assert.deepEqual(ok.asked, [{ text: 'Enter your authenticator code', timeout: 30 }]);
  assert.equal((await login('bob', 'Pw', { answer: async () => 'nope' })).denied?.reason, 'TOTP: wrong code');
  assert.equal(
    (await login('bob', 'Pw', { answer: () => Promise.reject(new Error('no answer to the challenge within 30 s')) })).denied?.reason,
    'TOTP: no answer to the challenge (no answer to the challenge within 30 s)',
  );
  // hook mode asks the same way (its source carries the question and the answer)
  const hook = await login('bob', 'Pw', { source: 'hook', answer: async () => 'nope' });
  assert.equal(hook.denied?.reason, 'TOTP: wrong code');
  assert.equal(hook.asked.length, 1);
  const unreachable = await login('bob', 'Pw', { source: 'hook' });
  assert.equal(unreachable.denied?.reason, 'TOTP: no answer to the challenge (challenge() cannot reach this client)');
  // a static response sent anyway is checked without asking
  const sent = await login('bob', `SCRV1:${b64('Pw')}:${b64(code(BOB))}`, { answer: async () => 'unused' });
  assert.equal(sent.denied, undefined);
  assert.equal(sent.asked.length, 0);
});

test('unenrolled: allow lets users without a secret through on their password alone', async (t) => {
  const { login } = await setup(t, { unenrolled: 'allow' });
  assert.equal((await login('carol', 'Pw')).denied, undefined);
  assert.equal((await login('alice', 'Pw')).denied?.reason, 'TOTP: no code sent (the client config needs static-challenge)');
});

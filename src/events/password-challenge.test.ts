import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sealChallengeState } from '../util/challenge-state.ts';
import { decodePassword } from './password-challenge.ts';
import { parseEvent } from './parse-event.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('SCRV1: the password and the static-challenge response are split apart, as UTF-8 text', () => {
  assert.deepEqual(decodePassword('alice', `SCRV1:${b64('pa:ss wörd')}:${b64('123456')}`), {
    password: 'pa:ss wörd',
    challengeResponse: { kind: 'static', response: '123456' },
  });
  // an empty response is still a response (the plugin then finds the code wrong)
  assert.deepEqual(decodePassword('alice', `SCRV1:${b64('pw')}:`), { password: 'pw', challengeResponse: { kind: 'static', response: '' } });
});

test('a password that only looks like SCRV1 is a plain password: bad base64, not UTF-8, a NUL, wrong field count', () => {
  for (const password of [
    'SCRV1:',
    'SCRV1:cGFzcw==',
    `SCRV1:${b64('pw')}:${b64('1')}:extra`,
    'SCRV1:not base64!:MTIz',
    'SCRV1:cGFzcw:MTIz', // unpadded
    `SCRV1:${Buffer.from([0xff, 0xfe]).toString('base64')}:MTIz`,
    `SCRV1:${b64('p\0w')}:MTIz`,
    `SCRV1:${b64('pw')}:${'A'.repeat(4001)}`,
    'SCRV1:$(touch /tmp/x):`id`',
  ]) {
    assert.deepEqual(decodePassword('alice', password), { password }, password.slice(0, 40));
  }
});

test('CRV1: a state sealed here gives back the password of the challenged connect, for that username only', () => {
  const state = sealChallengeState({ username: 'alice', password: 'Alice#1', expires: Date.now() + 60_000 });
  assert.deepEqual(decodePassword('alice', `CRV1::${state}::654321`), {
    password: 'Alice#1',
    challengeResponse: { kind: 'crv1', stateId: state, response: '654321' },
  });
  assert.deepEqual(decodePassword('mallory', `CRV1::${state}::654321`), {
    password: '',
    challengeResponse: { kind: 'crv1', stateId: state, response: '654321', problem: 'other username' },
  });
  assert.equal(decodePassword('alice', `CRV1::${state}::1`, Date.now() + 61_000).challengeResponse?.kind, 'crv1');
  assert.deepEqual(decodePassword('alice', `CRV1::${state}::1`, Date.now() + 61_000), {
    password: '',
    challengeResponse: { kind: 'crv1', stateId: state, response: '1', problem: 'expired' },
  });
});

test('CRV1: forged, altered and hostile state ids give no password', () => {
  const state = sealChallengeState({ username: 'alice', password: 'Alice#1', expires: Date.now() + 60_000 });
  const flipped = state.slice(0, -2) + (state.at(-2) === 'A' ? 'B' : 'A') + state.at(-1);
  for (const id of [flipped, 'AAAA', 'x'.repeat(5000), '$(id)', 'a b', state.slice(0, 30)]) {
    const d = decodePassword('alice', `CRV1::${id}::123456`);
    assert.equal(d.password, '', id.slice(0, 40));
    assert.equal(d.challengeResponse?.kind === 'crv1' && d.challengeResponse.problem, 'unknown state', id.slice(0, 40));
  }
  // not the CRV1 answer form: a plain password
  for (const password of ['CRV1:', 'CRV1::::1', 'CRV1::abc', 'crv1::abc::1']) assert.deepEqual(decodePassword('alice', password), { password });
});

test('parseEvent: user-pass-verify carries the decoded password and the response; the raw env is untouched', () => {
  const raw = `SCRV1:${b64('pw')}:${b64('000111')}`;
  const e = parseEvent({ name: 'user-pass-verify', instance: 'i', source: 'hook', env: { username: 'u', password: raw, common_name: 'c' } });
  assert.ok(e.name === 'user-pass-verify');
  assert.equal(e.password, 'pw');
  assert.deepEqual(e.challengeResponse, { kind: 'static', response: '000111' });
  assert.equal(e.env.password, raw);
  const plain = parseEvent({ name: 'user-pass-verify', instance: 'i', source: 'hook', env: { username: 'u', password: 'pw' } });
  assert.ok(plain.name === 'user-pass-verify' && plain.challengeResponse === undefined && !('challengeResponse' in plain));
});

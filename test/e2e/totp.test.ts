/**
 * The totp plugin after password-auth through real OpenVPN 2.6 clients and server, in both modes.
 * The clients get their credentials and answer challenges as a VPN GUI does, over their own
 * management interface (src/lab/client-answers.ts): OpenVPN 2.6 reads a static-challenge response
 * only from a terminal or that interface, never from the auth-user-pass file.
 *
 * Static challenge (`static-challenge "..." 1`: the client sends `SCRV1:base64:base64`): the right
 * code connects; a wrong code, the same code again, and no code are refused with a clear reason,
 * and nothing is recorded as a session. CRV1: a client that sent no code is refused with a CRV1
 * challenge and connects with its answer. Dynamic: the client is asked with CR_TEXT while it
 * waits and answers with `cr-response` (management mode: `client-pending-auth` and
 * `>CLIENT:CR_RESPONSE`; hook mode: `auth_pending_file` written while the user-pass-verify hook
 * waits in ask mode, and OpenVPN's client-crresponse hook); no answer within the timeout is refused.
 */
import assert from 'node:assert/strict';
import { chownSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { TOTP } from 'otpauth';
import { hashPassword } from '../../src/util/password-hash.ts';
import { decisionOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import type { ClientQuestion } from '../../src/lab/client-answers.ts';
import { modeLab, MODES, type Mode } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const ALICE = { password: 'Alice-Pa55-totp', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' };
const BOB = { password: 'Bob-Pa55-totp', secret: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' };
const codeOf = (secret: string) => new TOTP({ secret, algorithm: 'SHA1', digits: 6, period: 30 }).generate();

async function totpLab(t: TestContext, mode: Mode, totpMode: 'static' | 'crv1' | 'dynamic', challengeTimeout = '30s') {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-totp-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const users = join(dir, 'users');
  writeFileSync(users, `alice:${await hashPassword(ALICE.password)}\nbob:${await hashPassword(BOB.password)}\n`, { mode: 0o640 });
  chownSync(users, 0, RUN_AS.gid);
  // only root and the daemon's group may read the secrets
  const secrets = join(dir, 'totp-secrets');
  writeFileSync(secrets, `alice:${ALICE.secret}\nbob:${BOB.secret}\n`, { mode: 0o640 });
  chownSync(secrets, 0, RUN_AS.gid);
  return modeLab(t, mode, {
    passwords: true,
    events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
    pluginTimeout: '5s',
    plugins: [
      '  - use: password-auth',
      '    options:',
      `      file: ${users}`,
      '  - use: totp',
      '    options:',
      `      file: ${secrets}`,
      `      mode: ${totpMode}`,
      `      challenge-timeout: ${challengeTimeout}`,
    ],
  });
}

type Lab = Awaited<ReturnType<typeof totpLab>>;

/** A client that logs in as `user` and answers every question with `answer`. */
function login(
  h: Lab,
  commonName: string,
  user: 'alice' | 'bob',
  answer: (q: ClientQuestion) => string | Promise<string>,
  o: { staticChallenge?: boolean; retry?: boolean; crText?: boolean } = {},
) {
  const password = user === 'alice' ? ALICE.password : BOB.password;
  return h.lab.startClient({
    commonName,
    port: h.port,
    answers: { username: user, password, respond: answer, retry: o.retry },
    extraConfig: [
      ...(o.staticChallenge === false ? [] : ['static-challenge "Authenticator code" 1']),
      // a client says it can answer CR_TEXT (VPN GUIs do); OpenVPN checks this before it asks in hook mode
      ...(o.crText ? ['setenv IV_SSO crtext'] : []),
    ],
  });
}

/** The reason the daemon denied `commonName`'s user-pass-verify with. */
async function denialOf(h: Lab, commonName: string): Promise<string> {
  const e = await h.daemon.waitForEvent(
    `user-pass-verify deny of ${commonName}`,
    decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName }),
    60_000,
  );
  return String(e.data.reason);
}

const connectsOf = (h: Lab, commonName: string) => h.recordsOf('client-connect').filter((r) => r.commonName === commonName);

for (const mode of MODES) {
  describe(`totp, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('static challenge: the right code connects once; a wrong code, the same code again and no code are refused, and no session is recorded', async (t) => {
      const h = await totpLab(t, mode, 'static');
      const right = codeOf(ALICE.secret);
      const first = await login(h, 'st-alice', 'alice', () => right);
      await first.waitConnected();
      assert.deepEqual(first.questions, [{ kind: 'static', text: 'Authenticator code' }]);
      assert.equal(connectsOf(h, 'st-alice').length, 1);

      const wrong = right === '000000' ? '111111' : '000000';
      const [replayed, wrongCode, noCode] = await Promise.all([
        login(h, 'st-replay', 'alice', () => right),
        login(h, 'st-wrong', 'bob', () => wrong),
        login(h, 'st-nocode', 'bob', () => '', { staticChallenge: false }),
      ]);
      await Promise.all([replayed.waitAuthFailed(), wrongCode.waitAuthFailed(), noCode.waitAuthFailed()]);
      assert.equal(await denialOf(h, 'st-replay'), 'TOTP: code already used');
      assert.equal(await denialOf(h, 'st-wrong'), 'TOTP: wrong code');
      assert.equal(await denialOf(h, 'st-nocode'), 'TOTP: no code sent (the client config needs static-challenge)');
      for (const cn of ['st-replay', 'st-wrong', 'st-nocode']) assert.deepEqual(connectsOf(h, cn), [], `${cn}: no session`);
      assert.equal(
        h.daemon.logs().some((l) => JSON.stringify(l).includes(right)),
        false,
        'no code in the log',
      );
    });

    test('CRV1: a client that sent no code is challenged, and its answer on the next connect gets it in', async (t) => {
      const h = await totpLab(t, mode, 'crv1');
      const client = await login(h, 'crv1-bob', 'bob', () => codeOf(BOB.secret), { staticChallenge: false, retry: true });
      await client.waitForLog(/Initialization Sequence Completed/, 90_000);
      assert.deepEqual(client.questions, [{ kind: 'crv1', text: 'Enter your authenticator code' }]);
      assert.equal(await denialOf(h, 'crv1-bob'), 'TOTP: CRV1 challenge sent');
      assert.equal(connectsOf(h, 'crv1-bob').length, 1);
    });
  });
}

for (const mode of MODES) {
  describe(`totp, ${mode} mode, dynamic challenge`, { skip: isRoot ? false : 'needs root' }, () => {
    test('the client is asked with CR_TEXT while it waits and gets in with the right answer; a wrong answer and no answer are refused', async (t) => {
      const h = await totpLab(t, mode, 'dynamic', '10s');
      const dynamic = { staticChallenge: false, crText: true };
      const right = await login(h, 'dyn-alice', 'alice', () => codeOf(ALICE.secret), dynamic);
      await right.waitConnected(90_000);
      assert.deepEqual(right.questions, [{ kind: 'cr-text', text: 'Enter your authenticator code' }]);
      assert.equal(connectsOf(h, 'dyn-alice').length, 1);
      const [wrong, silent] = await Promise.all([
        login(h, 'dyn-bob', 'bob', () => '123', dynamic),
        // the user never answers
        login(h, 'dyn-silent', 'bob', () => new Promise<string>(() => undefined), dynamic),
      ]);
      await wrong.waitAuthFailed(90_000);
      assert.equal(await denialOf(h, 'dyn-bob'), 'TOTP: wrong code');
      assert.match(await denialOf(h, 'dyn-silent'), /^TOTP: no answer to the challenge \(no answer to the challenge within 10 s\)$/);
      assert.deepEqual(silent.questions, [{ kind: 'cr-text', text: 'Enter your authenticator code' }]);
      for (const cn of ['dyn-bob', 'dyn-silent']) assert.deepEqual(connectsOf(h, cn), [], `${cn}: no session`);
    });
  });
}

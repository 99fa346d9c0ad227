/**
 * A plugin's challenge in hook mode, through the real hook client and daemon driven the way
 * OpenVPN drives them (same env, files and arguments, as OpenVPN's user), without OpenVPN: the
 * user-pass-verify hook in ask mode returns deferred once the question is in
 * auth_pending_file, and the client-crresponse hook brings the answer to the waiting plugin,
 * whose verdict lands in auth_control_file. Stale, foreign and malformed answers change nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../src/lab/wait.ts';
import { decisionOf, ownedDir, REPO, RUN_AS, startDaemon, writeConfig } from '../src/lab/daemon-process.ts';
import { runHook } from './support/hook-runner.ts';

const CHALLENGER = join(REPO, 'test/fixtures/plugins/challenger.ts');
const ANSWER = 'right 42';

test('hook mode: the question goes to auth_pending_file, the client-crresponse answer decides; wrong, malformed, foreign and missing answers deny', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hook-challenge-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = join(work, 'run');
  const config = writeConfig(
    dir,
    [
      'instance: crtest',
      'hook:',
      `  dir: ${runDir}`,
      '  group: nogroup',
      '  timeout: 5s',
      'plugins:',
      `  - path: ${CHALLENGER}`,
      '    options:',
      `      answer: ${ANSWER}`,
      '      timeout: 3',
    ].join('\n'),
  );
  const daemon = await startDaemon(config, join(dir, 'daemon.log'));
  t.after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A file as OpenVPN creates it: its user's, mode 0600. */
  const openvpnFile = (name: string, text = '') => {
    const path = join(work, name);
    writeFileSync(path, text, { mode: 0o600 });
    chownSync(path, RUN_AS.uid, RUN_AS.gid);
    return path;
  };
  const client = (n: number) => ({
    common_name: `cr-${n}`,
    untrusted_ip: '192.0.2.7',
    untrusted_port: String(40000 + n),
    auth_control_file: openvpnFile(`acf-${n}`),
    auth_pending_file: openvpnFile(`apf-${n}`),
  });
  type Client = ReturnType<typeof client>;
  const verify = (c: Client, mode = 'ask') =>
    runHook([runDir, mode, 'deny', '5'], { script_type: 'user-pass-verify', username: 'alice', password: 'Pw-1', ...c });
  /** OpenVPN's client-crresponse: the answer, base64 and a newline, in a file named by the first argument. */
  const respond = (c: Client, encoded: string, n: number) =>
    runHook([runDir, 'defer', 'deny', '5', openvpnFile(`cr-${n}`, `${encoded}\n`)], { script_type: 'client-crresponse', ...c });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const verdict = (c: Client) => waitFor(`verdict of ${c.common_name}`, () => readFileSync(c.auth_control_file, 'utf8') || undefined, { timeoutMs: 20_000 });
  const reason = async (c: Client) =>
    String(
      (await daemon.waitForEvent(`deny of ${c.common_name}`, decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName: c.common_name }), 20_000))
        .data.reason,
    );

  // the right answer: asked, deferred, admitted
  const right = client(1);
  const asked = await verify(right);
  assert.equal(asked.code, 2, asked.stderr);
  assert.equal(readFileSync(right.auth_pending_file, 'utf8'), '3\ncrtext\nCR_TEXT:E,R:Your code\n');
  assert.equal(readFileSync(right.auth_control_file, 'utf8'), '', 'no verdict before the answer');
  const answered = await respond(right, b64(ANSWER), 1);
  assert.equal(answered.code, 0, answered.stderr);
  assert.equal(await verdict(right), '1');

  // a wrong answer, and one that is not base64 of text
  const wrong = client(2);
  const garbled = client(3);
  assert.equal((await verify(wrong)).code, 2);
  assert.equal((await verify(garbled)).code, 2);
  assert.equal((await respond(wrong, b64('wrong'), 2)).code, 0);
  assert.equal((await respond(garbled, '!!not base64!!', 3)).code, 0);
  assert.equal(await verdict(wrong), '0');
  assert.equal(await reason(wrong), 'wrong answer');
  assert.equal(await verdict(garbled), '0');
  assert.match(await reason(garbled), /not base64 of UTF-8 text/);

  // an answer from another connection (same name, another port) and one nobody asked for change nothing
  const silent = client(4);
  assert.equal((await verify(silent)).code, 2);
  assert.equal((await respond({ ...silent, untrusted_port: '40999' }, b64(ANSWER), 4)).code, 0);
  assert.equal((await respond(client(5), b64(ANSWER), 5)).code, 0);
  const dropped = () => daemon.logs().filter((l) => l.msg === 'a challenge response nobody waits for was dropped').length;
  await waitFor('the foreign answers dropped', () => dropped() === 2, { timeoutMs: 20_000 });
  assert.equal(await verdict(silent), '0', 'no answer within the timeout');
  assert.match(await reason(silent), /no answer to the challenge within 3 s/);
  // a late answer to a question that expired is dropped too
  assert.equal((await respond(silent, b64(ANSWER), 6)).code, 0);
  await waitFor('the late answer dropped', () => dropped() === 3, { timeoutMs: 20_000 });
  assert.equal(readFileSync(silent.auth_control_file, 'utf8'), '0');

  // a user-pass-verify hook that does not wait (defer mode) cannot carry a question
  const deferred = client(7);
  assert.equal((await verify(deferred, 'defer')).code, 2);
  assert.equal(await verdict(deferred), '0');
  assert.match(await reason(deferred), /cannot reach this client/);
  assert.equal(readFileSync(deferred.auth_pending_file, 'utf8'), '');
  assert.equal(
    daemon.logs().some((l) => JSON.stringify(l).includes(ANSWER)),
    false,
    'no answer in the log',
  );
});

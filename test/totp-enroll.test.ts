/**
 * `flexscript totp enroll` as an operator runs it: the secrets file it writes (atomically, mode
 * and owner kept, a file the totp plugin loads), the otpauth:// URI and QR code it prints, and
 * what it refuses.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { URI } from 'otpauth';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { SecretsFile } from '../src/plugins/builtin/totp/secrets-file.ts';

function workDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-totp-enroll-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const enroll = (args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, 'totp', 'enroll', ...args], { encoding: 'utf8' });

test('a new secrets file: mode 0640, the secret the printed URI carries, a QR code, and no temporary file left', async (t) => {
  const dir = workDir(t);
  const file = join(dir, 'totp-secrets');
  const r = enroll(['alice', '--file', file, '--issuer', 'Acme VPN']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /enrolled alice in /);
  assert.equal(statSync(file).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(dir), ['totp-secrets']);
  const uri = /^otpauth:\/\/totp\/\S+$/m.exec(r.stdout)?.[0];
  assert.ok(uri, r.stdout);
  const otp = URI.parse(uri);
  assert.equal(otp.issuer, 'Acme VPN');
  assert.equal(otp.label, 'alice');
  assert.match(r.stdout, /█/, 'a QR code in block characters');
  const secrets = await SecretsFile.load(file);
  assert.equal(secrets.get('alice'), otp.secret.base32);
});

test('other lines and the mode are kept; an enrolled user is refused without --force and replaced with it', async (t) => {
  const dir = workDir(t);
  const file = join(dir, 'secrets');
  writeFileSync(file, '# second factor\nbob:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n');
  chmodSync(file, 0o600);
  assert.equal(enroll(['alice', '--file', file, '--no-qr']).status, 0);
  const first = readFileSync(file, 'utf8');
  assert.match(first, /^# second factor\nbob:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\nalice:[A-Z2-7]{32}\n$/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const again = enroll(['alice', '--file', file]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /"alice" is already enrolled; --force/);
  assert.equal(readFileSync(file, 'utf8'), first);
  const forced = enroll(['alice', '--file', file, '--force', '--no-qr']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.doesNotMatch(forced.stdout, /█/);
  const second = readFileSync(file, 'utf8');
  assert.notEqual(second, first);
  assert.equal(second.split('\n').filter((l) => l.startsWith('alice:')).length, 1);
});

test('refused: a user name the file cannot hold, and a file the plugin would refuse', (t) => {
  const dir = workDir(t);
  const file = join(dir, 'secrets');
  assert.match(enroll(['a:b', '--file', file]).stderr, /user name "a:b" contains ":"/);
  writeFileSync(file, 'garbage\n');
  const r = enroll(['alice', '--file', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /secrets:1: expected user:SECRET/);
  assert.equal(readFileSync(file, 'utf8'), 'garbage\n');
});

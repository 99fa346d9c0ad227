import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSecretFile } from './secret-file.ts';

test('the service password file: first line read; other users able to read it, empty or missing → refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-ldap-secret-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'pw');
  writeFileSync(file, 'S3cret pass\nignored\n', { mode: 0o600 });
  assert.equal(readSecretFile(file), 'S3cret pass');
  chmodSync(file, 0o644);
  assert.throws(() => readSecretFile(file), /has mode 0644 .*other users could read the password/);
  writeFileSync(file, '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  assert.throws(() => readSecretFile(file), /the first line \(the password\) is empty/);
  assert.throws(() => readSecretFile(join(dir, 'none')), /cannot read .*ENOENT/);
  assert.throws(() => readSecretFile(dir), /is not a regular file/);
});

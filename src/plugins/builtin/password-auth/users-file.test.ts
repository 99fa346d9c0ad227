import assert from 'node:assert/strict';
import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { classifyHash } from '../../../util/hash-format.ts';
import { parseUsersFile, UsersFile, UsersFileError } from './users-file.ts';

// made by `flexscript passwd` and `htpasswd -B`; the hashes' passwords do not matter here
const ARGON = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8S6nO1KuKHVyP2kE5nKb+Xg4m2s6ZMQ9ubV2ZcG6p1Q';
const BCRYPT = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a';

test('users file: user:hash lines, comments, blank lines, CRLF, optional groups', () => {
  const text = ['# staff', '', `alice:${ARGON}`, `bob:${BCRYPT}:staff,ops`, `  carol :${BCRYPT.replace('$2y$', '$2b$')}\r`, '   ', `#dave:${ARGON}`].join('\n');
  const users = parseUsersFile(text, '/etc/users');
  assert.deepEqual([...users.keys()], ['alice', 'bob', '  carol ']);
  assert.equal(users.get('alice')!.kind, 'argon2id');
  assert.equal(users.get('bob')!.kind, 'bcrypt');
  assert.deepEqual(users.get('bob')!.groups, ['staff', 'ops']);
  assert.deepEqual(users.get('alice')!.groups, []);
  assert.equal(users.get('bob')!.line, 4);
});

test('users file: bad lines are refused with FILE:LINE and never echo the hash', () => {
  const problem = (text: string) => {
    try {
      parseUsersFile(text, '/etc/users');
    } catch (err) {
      assert.ok(err instanceof UsersFileError);
      return err.message;
    }
    return assert.fail('accepted');
  };
  const md5 = '$apr1$Ab3dEfGh$0123456789abcdefghijkl';
  assert.equal(
    problem(`a:${ARGON}\nb:${md5}`),
    '/etc/users:2: user "b": unsupported hash: expected argon2id ($argon2id$..., made by flexscript passwd) or bcrypt ($2y$/$2b$/$2a$, made by htpasswd -B)',
  );
  assert.doesNotMatch(problem(`b:${md5}`), /Ab3dEfGh/);
  assert.match(problem(`b:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=`), /^\/etc\/users:1: user "b": unsupported hash/);
  assert.match(problem('plain:secret'), /^\/etc\/users:1: user "plain": unsupported hash/);
  assert.doesNotMatch(problem('plain:secret'), /secret/);
  assert.match(problem(`a:${ARGON}\n\na:${BCRYPT}`), /^\/etc\/users:3: user "a" is already defined on line 1$/);
  assert.match(problem('justaname'), /^\/etc\/users:1: expected user:hash or user:hash:groups$/);
  assert.match(problem(`:${ARGON}`), /:1: the user name is empty/);
  assert.match(problem(`a:${ARGON}:st aff`), /:1: user "a": group "st aff" is not letters/);
  assert.match(problem(`a:${BCRYPT.slice(0, -1)}`), /:1: user "a": malformed bcrypt hash$/);
  assert.match(problem(`a:${BCRYPT.replace('$10$', '$31$')}`), /bcrypt cost 31 is outside 4\.\.15/);
  assert.match(problem(`a:${ARGON.replace('argon2id', 'argon2i')}`), /only argon2id version 19/);
  assert.match(problem(`a:${ARGON.replace('m=19456', 'm=99999999')}`), /memory cost m=99999999/);
});

test('hash classification', () => {
  assert.deepEqual(classifyHash(ARGON), { kind: 'argon2id' });
  for (const p of ['$2y$', '$2b$', '$2a$']) assert.deepEqual(classifyHash(BCRYPT.replace('$2y$', p)), { kind: 'bcrypt' });
  assert.ok('problem' in classifyHash(BCRYPT.replace('$2y$', '$2x$')));
});

test('UsersFile re-reads a changed file and keeps the old contents when the new one is bad', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-users-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'users');
  await writeFile(path, `alice:${ARGON}\n`);
  let clock = 0;
  const errors: string[] = [];
  const reloads: number[] = [];
  const users = await UsersFile.load(path, { now: () => clock, checkEveryMs: 1000, onError: (e) => errors.push(e.message), onReload: (n) => reloads.push(n) });
  assert.equal(users.size, 1);

  // replaced the way passwd and editors do: a new file renamed over the old one
  await writeFile(`${path}.new`, `alice:${ARGON}\nbob:${BCRYPT}\n`);
  await rename(`${path}.new`, path);
  await users.refresh();
  assert.equal(users.get('bob'), undefined, 'checked at most once per checkEveryMs');
  clock += 1000;
  await users.refresh();
  assert.equal(users.get('bob')?.kind, 'bcrypt');
  assert.deepEqual(reloads, [2]);

  await writeFile(`${path}.new`, `alice:${ARGON}\nbob:not-a-hash-at-all\n`);
  await rename(`${path}.new`, path);
  clock += 1000;
  await users.refresh();
  assert.equal(users.size, 2, 'the previous users stay');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, new RegExp(`^${path}:2: user "bob": unsupported hash`));
  assert.doesNotMatch(errors[0]!, /not-a-hash-at-all/);
  clock += 1000;
  await users.refresh();
  assert.equal(errors.length, 1, 'a bad version is reported once');

  await rm(path);
  clock += 1000;
  await users.refresh();
  assert.equal(users.size, 2);
  assert.match(errors[1]!, /cannot read \(ENOENT\); keeping the 2 users/);

  await writeFile(path, `carol:${ARGON}\n`);
  await chmod(path, 0o644);
  clock += 1000;
  await users.refresh();
  assert.deepEqual(
    [...users.entries()].map((e) => e.username),
    ['carol'],
  );
  assert.equal(users.worldReadable(), true);
  await chmod(path, 0o640);
  assert.equal(users.worldReadable(), false);
});

test('UsersFile.load refuses a missing or bad file with its name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-users-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(UsersFile.load(join(dir, 'nope')), new RegExp(`^UsersFileError: ${dir}/nope: cannot open: ENOENT$`));
  await writeFile(join(dir, 'bad'), '# ok\nalice\n');
  await assert.rejects(UsersFile.load(join(dir, 'bad')), new RegExp(`${dir}/bad:2: expected user:hash`));
  await assert.rejects(UsersFile.load(dir), /not a regular file|EISDIR/);
});

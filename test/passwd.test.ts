/**
 * `flexscript passwd` as an operator runs it: the files it writes, what it keeps, what it refuses,
 * and reading the password from a terminal without echo.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseUsersFile } from '../src/plugins/builtin/password-auth/users-file.ts';
import { verifyPassword } from '../src/util/password-hash.ts';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { waitFor } from '../src/lab/wait.ts';

const BCRYPT = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a';
const isRoot = process.getuid?.() === 0;

function workDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-passwd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const passwd = (args: string[], input: string) => spawnSync(process.execPath, [FLEXSCRIPT, 'passwd', ...args], { input, encoding: 'utf8' });

test('a new users file: mode 0640, one argon2id line that verifies, and no temporary file left', async (t) => {
  const dir = workDir(t);
  const file = join(dir, 'users');
  const r = passwd(['alice', '--file', file, '--groups', 'staff,ops'], 'Tr0ub4dor & 3 ✓\nignored second line\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /added alice in /);
  assert.equal(statSync(file).mode & 0o777, 0o640);
  const users = parseUsersFile(readFileSync(file, 'utf8'), file);
  const alice = users.get('alice')!;
  assert.equal(alice.kind, 'argon2id');
  assert.deepEqual(alice.groups, ['staff', 'ops']);
  assert.equal(await verifyPassword(alice.hash, 'Tr0ub4dor & 3 ✓'), true);
  assert.doesNotMatch(readFileSync(file, 'utf8') + r.stdout + r.stderr, /Tr0ub4dor/);
  assert.deepEqual(readdirSync(dir), ['users']);
});

test("replacing a user's line keeps every other line, comments, groups, mode and owner, and swaps the file atomically", async (t) => {
  const dir = workDir(t);
  const file = join(dir, 'users');
  const before = ['# VPN users', `carol:${BCRYPT}`, '', `alice:${BCRYPT}:staff`, '# the end'];
  writeFileSync(file, `${before.join('\n')}\n`);
  chmodSync(file, 0o600);
  if (isRoot) chownSync(file, 65534, 65534);
  const inode = statSync(file).ino;
  const r = passwd(['alice', '--file', file], 'new-secret\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /updated alice/);
  const after = readFileSync(file, 'utf8').split('\n');
  assert.deepEqual([after[0], after[1], after[2], after[4], after[5]], [before[0], before[1], before[2], before[4], '']);
  assert.match(after[3]!, /^alice:\$argon2id\$[^:]+:staff$/);
  assert.equal(await verifyPassword(after[3]!.split(':')[1]!, 'new-secret'), true);
  const st = statSync(file);
  assert.notEqual(st.ino, inode, 'a new file renamed over the old one');
  assert.equal(st.mode & 0o777, 0o600);
  if (isRoot) assert.deepEqual([st.uid, st.gid], [65534, 65534]);
  assert.deepEqual(readdirSync(dir), ['users']);

  const g = passwd(['alice', '--file', file, '--groups', 'ops'], 'x\n');
  assert.equal(g.status, 0, g.stderr);
  assert.match(readFileSync(file, 'utf8'), /\nalice:\$argon2id\$[^:]+:ops\n/);
});

test('--delete removes the user and nothing else', (t) => {
  const dir = workDir(t);
  const file = join(dir, 'users');
  writeFileSync(file, `# users\nalice:${BCRYPT}\ncarol:${BCRYPT}\n`);
  const r = passwd(['alice', '--file', file, '--delete'], '');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(file, 'utf8'), `# users\ncarol:${BCRYPT}\n`);
  const again = passwd(['alice', '--file', file, '--delete'], '');
  assert.equal(again.status, 1);
  assert.match(again.stderr, /no user "alice"/);
  const missing = passwd(['alice', '--file', join(dir, 'nope'), '--delete'], '');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read: ENOENT/);
});

test('bad user names, empty passwords and ambiguous files are refused and nothing changes', (t) => {
  const dir = workDir(t);
  const file = join(dir, 'users');
  const original = `alice:${BCRYPT}\n`;
  writeFileSync(file, original);
  const cases: [string, string, RegExp][] = [
    ['a:b', 'pw\n', /user name "a:b" contains ":"/],
    ['a\tb', 'pw\n', /contains a control character/],
    ['bad\u001bname', 'pw\n', /contains a control character/],
    ['#root', 'pw\n', /starts with "#"/],
    ['bob', '\n', /empty password refused/],
    ['bob', '', /empty password refused/],
    ['bob', 'pw\n', /group "b d" is not/],
  ];
  for (const [user, input, expected] of cases) {
    const r = passwd([user, '--file', file, ...(expected.source.includes('group') ? ['--groups', 'b d'] : [])], input);
    assert.equal(r.status, 1, `${JSON.stringify(user)} was accepted`);
    assert.match(r.stderr, expected);
  }
  assert.equal(readFileSync(file, 'utf8'), original);
  writeFileSync(file, `alice:${BCRYPT}\nalice:${BCRYPT}\n`);
  const dup = passwd(['alice', '--file', file], 'pw\n');
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /user "alice" is on lines 1 and 2; fix the file first/);
  assert.deepEqual(readdirSync(dir), ['users']);
});

test('from a terminal the password is read twice without echo', {
  skip: spawnSync('script', ['--version']).error ? 'script (util-linux) is not installed' : false,
}, async (t) => {
  const dir = workDir(t);
  const file = join(dir, 'users');
  // script gives the command a pseudo-terminal; its output is everything the terminal shows
  const child = spawn('script', ['-qec', `${process.execPath} ${FLEXSCRIPT} passwd alice --file ${file}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let shown = '';
  child.stdout.on('data', (d) => (shown += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor('first prompt', () => shown.includes('New password for alice: '), { timeoutMs: 20_000 });
  child.stdin.write('Hidden-Pa55x\u007f\r');
  await waitFor('second prompt', () => shown.includes('Again: '), { timeoutMs: 20_000 });
  child.stdin.write('Hidden-Pa55\r');
  assert.equal(await exited, 0, shown);
  assert.doesNotMatch(shown, /Hidden/, 'the terminal showed the password');
  const alice = parseUsersFile(readFileSync(file, 'utf8'), file).get('alice')!;
  assert.equal(await verifyPassword(alice.hash, 'Hidden-Pa55'), true, 'backspace removed the last character');
});

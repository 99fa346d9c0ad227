import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { groupIdOf, parseGroupFile, parsePasswdFile, userIdOf, userNameOf } from './system-accounts.ts';

test('group file: comments, blank lines, empty member lists and trailing commas', () => {
  const text = ['# local groups', '', 'root:x:0:', 'staff:x:50:alice,bob,', 'ops:*:60:,carol', 'nobody:x:65534', '  ', 'tty:x:5:\r'].join('\n');
  assert.deepEqual(parseGroupFile(text), [
    { name: 'root', gid: 0, members: [] },
    { name: 'staff', gid: 50, members: ['alice', 'bob'] },
    { name: 'ops', gid: 60, members: ['carol'] },
    { name: 'nobody', gid: 65534, members: [] },
    { name: 'tty', gid: 5, members: [] },
  ]);
});

test('group file: malformed lines and NIS entries are skipped, not misread', () => {
  const text = ['nogid:x::a', 'word:x:ten:a', 'neg:x:-1:', 'extra:x:7:a:b', 'short:x', ':x:8:', '+:::', '+nis:x:9:', '-gone:x:10:', 'ok:x:11:a'].join('\n');
  assert.deepEqual(parseGroupFile(text), [{ name: 'ok', gid: 11, members: ['a'] }]);
});

test('group file: a long member list is read whole', () => {
  const members = Array.from({ length: 20_000 }, (_, i) => `user${i}`);
  const [group] = parseGroupFile(`big:x:1000:${members.join(',')}\n`);
  assert.equal(group!.members.length, 20_000);
  assert.equal(group!.members.at(-1), 'user19999');
});

test('passwd file: name, uid and gid; short and malformed lines skipped', () => {
  const text = ['# users', 'root:x:0:0:root:/root:/bin/bash', 'svc:x:998:997', 'bad:x:uid:1:::', 'few:x:5', ''].join('\n');
  assert.deepEqual(parsePasswdFile(text), [
    { name: 'root', uid: 0, gid: 0 },
    { name: 'svc', uid: 998, gid: 997 },
  ]);
});

test('lookups: a name first, then digits as the id itself; unknown names are undefined', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-accounts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const group = join(dir, 'group');
  const passwd = join(dir, 'passwd');
  writeFileSync(group, 'staff:x:50:alice\n1234:x:77:\n');
  writeFileSync(passwd, 'alice:x:1001:50::/home/alice:/bin/sh\n');
  assert.equal(groupIdOf('staff', group), 50);
  assert.equal(groupIdOf('1234', group), 77, 'a group named by digits is found by its name');
  assert.equal(groupIdOf('4321', group), 4321);
  assert.equal(groupIdOf('nope', group), undefined);
  assert.equal(userIdOf('alice', passwd), 1001);
  assert.equal(userIdOf('999', passwd), 999);
  assert.equal(userIdOf('bob', passwd), undefined);
  assert.equal(userNameOf(1001, passwd), 'alice');
  assert.equal(userNameOf(5, passwd), undefined);
  assert.equal(groupIdOf('staff', join(dir, 'missing')), undefined, 'a missing file has no entries');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { entryLines, usernameProblem } from './user-lines.ts';

test('user names: any text but the field separator, control characters, a leading comment mark, or more than 256 bytes', () => {
  assert.equal(usernameProblem('alice'), undefined);
  assert.equal(usernameProblem('Ünïcødé $(x) `y`; "q"'), undefined);
  assert.match(usernameProblem('a:b')!, /":"/);
  assert.match(usernameProblem('a\nb')!, /control/);
  assert.match(usernameProblem('a\tb')!, /control/);
  assert.match(usernameProblem('#a')!, /comment/);
  assert.match(usernameProblem('x'.repeat(257))!, /256/);
  assert.match(usernameProblem('')!, /empty/);
});

test('entry lines: numbered as in the file, comments and blank lines skipped, CRLF read as LF', () => {
  assert.deepEqual(
    [...entryLines('# c\n\nalice:x\r\n  \nbob:y:z\n')],
    [
      { line: 3, content: 'alice:x' },
      { line: 5, content: 'bob:y:z' },
    ],
  );
  assert.deepEqual([...entryLines('')], []);
  assert.deepEqual([...entryLines('carol:w')], [{ line: 1, content: 'carol:w' }]);
});

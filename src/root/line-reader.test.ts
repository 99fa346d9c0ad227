import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { readLines } from './line-reader.ts';

test('the root pipe: an overlong line is reported once and skipped; the next lines are served; a last line without newline is dropped', async () => {
  const stream = new PassThrough();
  const events: string[] = [];
  const ended = new Promise<void>((resolve) =>
    readLines(stream, 8, {
      line: (text) => events.push(text),
      tooLong: () => events.push('!'),
      end: () => resolve(),
    }),
  );
  for (const chunk of ['{"id":1}\n{"id":2,"x":', '"long"}\n{"id":3}\r\n', 'x'.repeat(20), 'x'.repeat(20), '\n{"id":4}\n', 'partial']) stream.write(chunk);
  stream.end();
  await ended;
  assert.deepEqual(events, ['{"id":1}', '!', '{"id":3}', '!', '{"id":4}']);
});

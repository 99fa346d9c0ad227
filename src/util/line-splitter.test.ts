import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter } from './line-splitter.ts';

const feed = (splitter: LineSplitter, ...chunks: (string | Buffer)[]) => chunks.map((c) => splitter.push(Buffer.isBuffer(c) ? c : Buffer.from(c)));

test('only the line ending is taken off: spaces, tabs and no-break spaces stay', () => {
  const [r] = feed(new LineSplitter(100), 'kill alice \nkill alice\u00a0\r\n\tx\r\n \n\n');
  assert.deepEqual(r!.lines, ['kill alice ', 'kill alice\u00a0', '\tx', ' ', '']);
  assert.equal(r!.tooLong, false);
});

test('a line split across chunks, inside a UTF-8 character too', () => {
  const bytes = Buffer.from('漢字\n');
  const s = new LineSplitter(100);
  const results = feed(s, bytes.subarray(0, 1), bytes.subarray(1, 4), bytes.subarray(4));
  assert.deepEqual(
    results.flatMap((r) => r.lines),
    ['漢字'],
  );
});

test('a lone CR is data, not a line ending', () => {
  const [r] = feed(new LineSplitter(100), 'a\rb\n');
  assert.deepEqual(r!.lines, ['a\rb']);
});

test('the limit: a line of exactly maxBytes passes, one more byte fails, also before its newline comes', () => {
  assert.deepEqual(feed(new LineSplitter(4), 'abcd\r\n')[0], { lines: ['abcd'], tooLong: false });
  assert.deepEqual(feed(new LineSplitter(4), 'x\nabcde\ny\n')[0], { lines: ['x'], tooLong: true });
  const s = new LineSplitter(4);
  const results = feed(s, 'ab', 'cd', 'ef');
  assert.deepEqual(
    results.map((r) => r.tooLong),
    [false, false, true],
  );
  assert.deepEqual(feed(s, 'ok\n')[0], { lines: [], tooLong: true }, 'nothing more once over the limit');
});

test('finish gives the last line without its newline', () => {
  const s = new LineSplitter(10);
  feed(s, 'one\ntwo');
  assert.equal(s.finish(), 'two');
  assert.equal(s.finish(), undefined);
});

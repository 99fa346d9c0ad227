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

test('push and split report the same lines and limit', () => {
  const chunks = ['one\ntoo-long-line\ntwo', '\n'];
  const viaSplit: string[] = [];
  const s = new LineSplitter(8);
  for (const c of chunks) s.split(Buffer.from(c), { line: (l) => viaSplit.push(l), tooLong: () => viaSplit.push('!') });
  assert.deepEqual(viaSplit, ['one', '!']);
  assert.deepEqual(feed(new LineSplitter(8), ...chunks), [
    { lines: ['one'], tooLong: true },
    { lines: [], tooLong: true },
  ]);
});

test('skip: a line over the limit is reported once, in order, and the next lines are read', () => {
  const events: string[] = [];
  const s = new LineSplitter(4, { afterTooLong: 'skip' });
  const on = { line: (l: string) => events.push(l), tooLong: () => events.push('!') };
  for (const c of ['ab\nabcdef\ncd\n', 'xy', 'zzzz', 'zz', 'zz\nok', '\r\n', 'abcd\r\n']) s.split(Buffer.from(c), on);
  assert.deepEqual(events, ['ab', '!', 'cd', '!', 'ok', 'abcd']);
  assert.deepEqual(new LineSplitter(4, { afterTooLong: 'skip' }).push(Buffer.from('abcdef\nok\n')), { lines: ['ok'], tooLong: true });
});

test('skip: an endless line holds no more than the limit', () => {
  const s = new LineSplitter(1024, { afterTooLong: 'skip' });
  let reports = 0;
  for (let i = 0; i < 1000; i++) s.split(Buffer.alloc(4096, 0x61), { line: () => assert.fail('no line ends'), tooLong: () => reports++ });
  assert.equal(reports, 1);
  assert.equal(s.finish(), undefined);
});

test('takePrefix takes a prompt that ends no line, and only from the line being read', () => {
  const prompt = Buffer.from('ENTER PASSWORD:');
  const s = new LineSplitter(Number.POSITIVE_INFINITY);
  assert.deepEqual(s.push(Buffer.from('ENTER PASS')).lines, []);
  assert.equal(s.takePrefix(prompt), false, 'not all of it yet');
  s.push(Buffer.from('WORD:SUCC'));
  assert.equal(s.takePrefix(prompt), true);
  assert.equal(s.takePrefix(prompt), false);
  assert.deepEqual(s.push(Buffer.from('ESS: password is correct\n')).lines, ['SUCCESS: password is correct']);
});

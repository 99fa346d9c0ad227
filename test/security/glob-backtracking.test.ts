/**
 * Group patterns are operator config, but the names matched against them are the client's:
 * a name built to make a pattern backtrack must cost no more than a linear amount of work, and
 * a name longer than any configured one matches nothing at all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileGlob, MAX_GLOB_NAME, type GlobMeter } from '../../src/util/glob.ts';

const HOSTILE_PATTERN = '*-*-*-*.staff';

/** The textbook table of which prefixes match which (quadratic, and obviously right). */
function reference(pattern: string, name: string): boolean {
  const p = [...pattern];
  const s = [...name];
  let row = [true, ...s.map(() => false)];
  for (const c of p) {
    const next = [c === '*' && row[0]!];
    for (let j = 1; j <= s.length; j++) next[j] = c === '*' ? row[j]! || next[j - 1]! : row[j - 1]! && (c === '?' || c === s[j - 1]);
    row = next;
  }
  return row[s.length]!;
}

/** Names that make a backtracking matcher try every way of splitting the dashes. */
function hostileNames(): string[] {
  const names = ['-'.repeat(1000), '-'.repeat(4096), '-'.repeat(MAX_GLOB_NAME), `${'-'.repeat(MAX_GLOB_NAME - 6)}.staff`];
  for (let i = 0; i < 100; i++) {
    const n = 20 + ((i * 37) % (MAX_GLOB_NAME - 20));
    // dashes with a near miss at the end: `.staf`, `.stafX`, dashes only, a dash too few
    const endings = ['.staf', '.stafX', '', '-.staff'.slice(1)];
    names.push('-'.repeat(n) + endings[i % endings.length]!, '-a'.repeat(n / 2) + endings[(i + 1) % endings.length]!);
  }
  return names;
}

test('a hostile name against *-*-*-*.staff costs linear work, also for 1,000 dashes and 100 variants', { timeout: 30_000 }, () => {
  const meter: GlobMeter = { steps: 0 };
  const match = compileGlob(HOSTILE_PATTERN, meter);
  const names = hostileNames();
  let total = 0;
  let matches = 0;
  for (const name of names) {
    meter.steps = 0;
    const matched = match(name);
    // at most one comparison per character of the name for each character of the pattern
    assert.ok(meter.steps <= (name.length + 1) * HOSTILE_PATTERN.length, `${meter.steps} steps for a name of ${name.length}`);
    // and for this pattern, whose pieces are one character, a few per character of the name
    assert.ok(meter.steps <= 3 * name.length + 20, `${meter.steps} steps for a name of ${name.length}`);
    total += meter.steps;
    if (matched) matches++;
    assert.equal(matched, name.length <= MAX_GLOB_NAME && reference(HOSTILE_PATTERN, name), name.slice(-12));
  }
  assert.ok(total > 0, 'names within the cap were compared');
  assert.ok(matches > 0, 'some names do match');
});

test('names longer than the cap match no pattern, without looking at them', () => {
  const meter: GlobMeter = { steps: 0 };
  const long = 'a'.repeat(MAX_GLOB_NAME + 1);
  for (const pattern of ['*', 'a*', '*a', long, '?'.repeat(MAX_GLOB_NAME + 1)]) {
    assert.equal(compileGlob(pattern, meter)(long), false, pattern.slice(0, 10));
  }
  assert.equal(meter.steps, 0);
  assert.equal(compileGlob('*')('a'.repeat(MAX_GLOB_NAME)), true, 'a name at the cap still matches');
});

test('the same meaning as before: * any run, ? one character, everything else literal, the whole name', () => {
  const cases: [string, string, boolean][] = [
    ['a.b*', 'a.bc', true],
    ['a.b*', 'axbc', false],
    ['(x)|y', '(x)|y', true],
    ['(x)|y', 'y', false],
    ['ops-?', 'ops-1', true],
    ['ops-?', 'ops-12', false],
    ['ops-?', 'ops-', false],
    ['*', 'line\nbreak', true],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['*.staff', 'alice.staff', true],
    ['*.staff', 'alice.staff.evil', false],
    ['*.staff', '.staff', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYbZc', true],
    ['a*b*c', 'acb', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['*ab*ab*', 'abab', true],
    ['*ab*ab*', 'aab', false],
    ['?*?', 'x', false],
    ['?*?', 'xy', true],
    ['**x**', 'x', true],
    ['[a-z]*', '[a-z]rest', true],
    ['[a-z]*', 'b', false],
    ['Zoë-?', 'Zoë-雪', true],
    ['\\*', '\\anything', true],
    ['\\*', '\\*', true],
    ['$(id)*', '$(id) ok', true],
  ];
  for (const [pattern, name, want] of cases) {
    assert.equal(reference(pattern, name), want, `the reference: ${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}`);
    assert.equal(compileGlob(pattern)(name), want, `${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}`);
  }
});

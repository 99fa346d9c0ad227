/**
 * docs/security-model.md names a test for every promise: each named test exists, in the file
 * named, so a renamed or removed test cannot leave a promise unproven.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../../src/lab/daemon-process.ts';

interface Reference {
  readonly file: string;
  readonly name: string;
}

/** The test column of every promise table: `` `FILE` › name<br>› name<br>`FILE` › name ``. */
function references(doc: string): { promise: string; refs: Reference[] }[] {
  const rows: { promise: string; refs: Reference[] }[] = [];
  let inPromises = false;
  for (const line of doc.split('\n')) {
    if (line.startsWith('## ')) inPromises = line === '## Promises';
    if (!inPromises || !line.startsWith('| ') || /^\| promise +\|/.test(line) || line.startsWith('| ---')) continue;
    const cells = line.slice(2, -2).split(' | ');
    assert.equal(cells.length, 2, `a promise row has a promise and its test: ${line.slice(0, 80)}`);
    const [promise, tests] = cells as [string, string];
    const refs: Reference[] = [];
    let file: string | undefined;
    for (const part of tests.split('<br>')) {
      const m = /^(?:`([^`]+)` )?› (.+)$/.exec(part.trim());
      assert.ok(m, `"${part}" reads \`FILE\` › test name (promise: ${promise.slice(0, 60)})`);
      file = m[1] ?? file;
      assert.ok(file, `a test name follows its file: ${part}`);
      refs.push({ file, name: m[2]!.replace(/\\\*/g, '*') });
    }
    rows.push({ promise, refs });
  }
  return rows;
}

/** Source text with the escapes a test title may carry in its string literal undone. */
function sourceText(path: string): string {
  return readFileSync(path, 'utf8').replace(/\\(['"\\`])/g, '$1');
}

test('every promise of the security model names tests that exist in the files it names', () => {
  const rows = references(readFileSync(join(REPO, 'docs/security-model.md'), 'utf8'));
  assert.ok(rows.length >= 40, `the promises are read (${rows.length})`);
  const missing: string[] = [];
  for (const { promise, refs } of rows) {
    assert.ok(refs.length > 0, `a promise without a test: ${promise}`);
    for (const { file, name } of refs) {
      const path = join(REPO, file);
      if (!existsSync(path)) {
        missing.push(`${file}: no such file`);
        continue;
      }
      // a title built from a template (`${mode}`) is named with … for its variable part
      const text = sourceText(path);
      if (!name.split('…').every((piece) => text.includes(piece))) missing.push(`${file} › ${name}`);
    }
  }
  assert.deepEqual(missing, [], 'named tests that do not exist');
});

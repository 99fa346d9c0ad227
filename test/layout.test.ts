/**
 * Rules of the source tree that an import graph cannot show: only the CLI (and the root stage's
 * own entry point, whose stdout is its protocol) writes to the terminal; library code logs
 * through the logger it is given.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../src/lab/daemon-process.ts';

const WRITERS = /\bconsole\.(log|error|warn|info|debug)\b|\bprocess\.(stdout|stderr)\b/;
const ALLOWED = [/^src\/cli\//, /^src\/root\/root-main\.ts$/];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

test('only the CLI writes to the terminal', () => {
  const offenders: string[] = [];
  for (const file of sources(join(REPO, 'src'))) {
    const rel = relative(REPO, file);
    if (ALLOWED.some((re) => re.test(rel))) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (WRITERS.test(line) && !/^\s*(\*|\/\/)/.test(line)) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offenders, []);
});

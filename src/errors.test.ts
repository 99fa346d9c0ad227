import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, ErrorCode } from './errors.ts';
import { RootErrorCode } from './root/protocol.ts';
import { UNTRUSTED_PATH } from './root/trusted-paths.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const registered: ReadonlySet<string> = new Set(ERROR_CODES.map((c) => c.code));
/** A code, not the `FXS_ROOT_*` wildcard the docs use for a family. */
const CODE = /\bFXS_[A-Z0-9_]+\b(?!\*)/g;
/** Environment variables of the test lab, not error codes. */
const NOT_CODES = new Set(['FXS_KEEP', 'FXS_DAEMON_NODE_ARGS']);

function files(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? files(path, keep) : keep(path) ? [path] : [];
  });
}

function codesIn(text: string): Set<string> {
  return new Set([...text.matchAll(CODE)].map((m) => m[0]).filter((c) => !NOT_CODES.has(c)));
}

test('every code is declared once, with a one-line meaning', () => {
  const seen = new Set<string>();
  for (const { code, meaning } of ERROR_CODES) {
    assert.ok(!seen.has(code), `${code} is declared twice`);
    seen.add(code);
    assert.match(code, /^FXS_[A-Z0-9_]+$/);
    assert.ok(meaning.length > 0 && !meaning.includes('\n'), `${code}: meaning`);
  }
  for (const code of [...Object.values(ErrorCode), ...Object.values(RootErrorCode)]) assert.ok(registered.has(code), `${code} is not in ERROR_CODES`);
  assert.equal(UNTRUSTED_PATH, RootErrorCode.UNTRUSTED_PATH, 'trusted-paths.ts repeats the registry value');
});

test('docs/errors.md lists exactly the registered codes', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `(FXS_[A-Z0-9_]+)` +\|/gm)].map((m) => m[1]!);
  const listed = new Set(rows);
  assert.equal(listed.size, rows.length, 'a code is listed twice');
  const missing = [...registered].filter((c) => !listed.has(c));
  const stale = [...codesIn(doc)].filter((c) => !registered.has(c));
  assert.deepEqual(missing, [], 'codes missing from docs/errors.md');
  assert.deepEqual(stale, [], 'codes in docs/errors.md that no longer exist');
});

test('every code the product prints or the docs name is registered', () => {
  const product = [
    ...files('src', (p) => p.endsWith('.ts') && !p.endsWith('.test.ts')),
    ...files('bin', (p) => p.endsWith('.js')),
    'hook/flexscript-hook',
    ...files('docs', (p) => p.endsWith('.md')),
    'README.md',
  ];
  const unknown: string[] = [];
  for (const path of product) {
    for (const code of codesIn(readFileSync(join(ROOT, path), 'utf8'))) if (!registered.has(code)) unknown.push(`${relative('.', path)}: ${code}`);
  }
  assert.deepEqual(unknown, []);
  // the scan itself: it finds the codes the hook client prints
  assert.ok(codesIn(readFileSync(join(ROOT, 'hook/flexscript-hook'), 'utf8')).has(ErrorCode.HOOK_UNREACHABLE));
});

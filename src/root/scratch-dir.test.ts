import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ScratchDir } from './scratch-dir.ts';

test('a scratch directory left by a root stage that was killed is removed by the next one; live ones, links and others’ are kept', (t) => {
  const prefix = 'flexscript-root-';
  const base = mkdtempSync(join(tmpdir(), 'fxs-scratch-base-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  // a pid that is certainly gone: a child that has exited
  const dead = spawnSync('true').pid!;
  const abandoned = join(base, `${prefix}${dead}-aaaaaa`);
  const live = join(base, `${prefix}${process.pid}-bbbbbb`);
  const target = mkdtempSync(join(base, 'fxs-scratch-target-'));
  const link = join(base, `${prefix}${dead}-cccccc`);
  const others = join(base, `${prefix}${dead}-dddddd`);
  for (const d of [abandoned, live, others]) mkdirSync(d);
  symlinkSync(target, link);
  t.after(() => {
    for (const p of [abandoned, live, link, others, target]) rmSync(p, { recursive: true, force: true });
  });
  if (process.getuid?.() === 0) chownSync(others, 65534, 65534);

  const scratch = new ScratchDir(prefix, base);
  t.after(() => scratch.close());
  assert.ok(scratch.path.startsWith(join(base, `${prefix}${process.pid}-`)), scratch.path);
  assert.equal(existsSync(abandoned), false, 'the dead owner’s directory is removed');
  assert.equal(existsSync(live), true, 'a live owner’s directory is kept');
  assert.equal(existsSync(link) && existsSync(target), true, 'a link is neither followed nor removed');
  if (process.getuid?.() === 0) assert.equal(existsSync(others), true, 'a directory another user owns is kept');
  scratch.close();
  assert.equal(existsSync(scratch.path), false);
});

import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RootErrorCode } from './protocol.ts';
import { checkTrustedPaths, findUntrustedPaths, rootStagePaths, UNTRUSTED_PATH, UntrustedPathError } from './trusted-paths.ts';

// Under the project, whose parents are root-owned: /tmp itself is world-writable and would
// (rightly) make everything under it untrusted.
const base = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '.tmp');
const isRoot = process.getuid?.() === 0;

describe('trusted paths', { skip: isRoot ? false : 'needs root (files owned by root and by others)' }, () => {
  let dir = '';
  before(async () => {
    await mkdir(base, { recursive: true, mode: 0o755 });
    dir = await mkdtemp(join(base, 'trust-'));
    await chmod(dir, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const file = async (name: string, mode: number, uid = 0) => {
    const path = join(dir, name);
    await writeFile(path, 'x', { mode });
    await chmod(path, mode);
    await chown(path, uid, uid === 0 ? 0 : 65534);
    return path;
  };

  it('accepts root-owned files in root-owned directories', async () => {
    const ok = await file('ok.yaml', 0o644);
    assert.deepEqual(await findUntrustedPaths([ok]), []);
    await checkTrustedPaths([ok, dir]);
  });

  it('refuses group- or world-writable files, naming path and reason', async () => {
    const g = await file('group.yaml', 0o664);
    const o = await file('other.yaml', 0o646);
    assert.deepEqual(await findUntrustedPaths([g, o]), [
      { path: g, problem: 'writable by group (mode 0664)' },
      { path: o, problem: 'writable by others (mode 0646)' },
    ]);
    await assert.rejects(
      checkTrustedPaths([g]),
      (err: unknown) => err instanceof UntrustedPathError && err.code === 'FXS_ROOT_UNTRUSTED_PATH' && err.message.includes(g),
    );
  });

  it('refuses a file not owned by root', async () => {
    const n = await file('nobody.yaml', 0o644, 65534);
    assert.deepEqual(await findUntrustedPaths([n]), [{ path: n, problem: 'owned by uid 65534, not root' }]);
  });

  it('refuses a safe file inside a writable parent directory', async () => {
    const sub = join(dir, 'open');
    await mkdir(sub);
    await chmod(sub, 0o777);
    const inner = join(sub, 'root.yaml');
    await writeFile(inner, 'x', { mode: 0o644 });
    assert.deepEqual(await findUntrustedPaths([inner]), [{ path: sub, problem: 'writable by group and others (mode 0777)' }]);
  });

  it('walks a listed directory and finds a bad file deep inside', async () => {
    const tree = join(dir, 'tree', 'a', 'b');
    await mkdir(tree, { recursive: true });
    await writeFile(join(tree, 'ok.ts'), 'x', { mode: 0o644 });
    const bad = join(tree, 'bad.ts');
    await writeFile(bad, 'x');
    await chmod(bad, 0o666);
    assert.deepEqual(await findUntrustedPaths([join(dir, 'tree')]), [{ path: bad, problem: 'writable by group and others (mode 0666)' }]);
  });

  it('follows a symlink to its target and checks the target', async () => {
    const target = await file('target.yaml', 0o666);
    const link = join(dir, 'link.yaml');
    await symlink(target, link);
    assert.deepEqual(await findUntrustedPaths([link]), [{ path: target, problem: 'writable by group and others (mode 0666)' }]);
  });

  it('refuses missing and relative paths', async () => {
    assert.deepEqual(await findUntrustedPaths([join(dir, 'missing.yaml'), 'relative/root.yaml']), [
      { path: join(dir, 'missing.yaml'), problem: 'does not exist' },
      { path: 'relative/root.yaml', problem: 'not an absolute path' },
    ]);
  });

  it('refuses a world-writable folder itself, even with the sticky bit', async () => {
    const problems = await findUntrustedPaths(['/tmp']);
    assert.ok(problems.some((p) => p.path === '/tmp' && /writable by group and others/.test(p.problem)));
  });

  it('accepts a root-owned folder inside a root-owned sticky folder, not inside a plain world-writable one', async () => {
    const sticky = join(dir, 'sticky');
    await mkdir(join(sticky, 'app'), { recursive: true });
    await chmod(sticky, 0o1777);
    await chmod(join(sticky, 'app'), 0o755);
    assert.deepEqual(await findUntrustedPaths([join(sticky, 'app')]), []);
    await chmod(sticky, 0o777);
    const problems = await findUntrustedPaths([join(sticky, 'app')]);
    assert.ok(problems.some((p) => p.path === sticky && /writable by group and others/.test(p.problem)));
  });
});

describe('trusted paths: the root stage list', () => {
  it('covers the config, the code, the packages loaded and node', () => {
    const paths = rootStagePaths('/etc/flexscript/root.yaml');
    assert.equal(paths[0], '/etc/flexscript/root.yaml');
    for (const end of ['/bin/flexscript-root.js', '/package.json', '/dist/root', '/node_modules/yaml', '/node_modules/zod']) {
      assert.ok(
        paths.some((p) => p.endsWith(end)),
        end,
      );
    }
    // compiled JavaScript only: no TypeScript sources or tooling run as root
    assert.ok(!paths.some((p) => /\/src\/|\/node_modules\/(tsx|esbuild|@esbuild|typescript)\b/.test(p)), paths.join(' '));
    assert.ok(paths.includes(process.execPath));
    assert.ok(paths.every((p) => p.startsWith('/')));
  });

  it('lists everything the root stage imports: its own folder, yaml, zod and node', async () => {
    // the root stage's code is checked as one folder (dist/root): it must import nothing else
    const dir = dirname(fileURLToPath(import.meta.url));
    const outside: string[] = [];
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
      const text = await readFile(join(dir, name), 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^']+)'/gm)) {
        const spec = m[1]!;
        if (!/^(\.\/[^/]+$|node:|yaml$|zod$)/.test(spec)) outside.push(`${name}: ${spec}`);
      }
    }
    assert.deepEqual(outside, []);
  });

  it('uses the error code of the protocol', () => {
    assert.equal(UNTRUSTED_PATH, RootErrorCode.UNTRUSTED_PATH);
  });
});

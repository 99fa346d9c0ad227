/**
 * The product runs as the JavaScript compiled into dist/ (`npm run build`, which `npm test`
 * runs first): the CLI loads no TypeScript tooling and none of the TypeScript sources. tsx (and
 * esbuild) load only when a config names a plugin file, and then compile only that file.
 * Every module a command loads is recorded by a resolve hook registered before it starts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FLEXSCRIPT, REPO } from '../src/lab/daemon-process.ts';

const TOOLING = /\/node_modules\/(tsx|esbuild|@esbuild|typescript)\//;

/** Runs `flexscript ARGV` and returns its exit status, output and every module URL it resolved. */
function loadedBy(dir: string, argv: string[]): { status: number | null; out: string; urls: string[] } {
  const log = join(dir, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const r = await next(specifier, context);\n  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');\n  return r;\n}\n`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', register, FLEXSCRIPT, ...argv], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  let urls: string[] = [];
  try {
    urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    // nothing resolved
  }
  return { status: r.status, out: r.stdout + r.stderr, urls };
}

test('the CLI runs the compiled JavaScript: no TypeScript tooling and no source file loads unless a config names a plugin file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-compiled-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dist = `${pathToFileURL(join(REPO, 'dist')).href}/`;
  const src = `${pathToFileURL(join(REPO, 'src')).href}/`;

  const help = loadedBy(dir, ['--help']);
  assert.equal(help.status, 0, help.out);
  assert.ok(help.urls.includes(`${dist}cli/main.js`), help.urls.join('\n'));
  assert.deepEqual(
    help.urls.filter((u) => TOOLING.test(u) || u.startsWith(src) || u.endsWith('.ts')),
    [],
  );

  // built-in plugins only: still nothing but JavaScript
  const builtins = join(dir, 'builtins.yaml');
  writeFileSync(
    builtins,
    [
      'instance: t',
      'hook:',
      `  dir: ${join(dir, 'vpn')}`,
      '  group: nogroup',
      'plugins:',
      '  - use: exec',
      '    options: { path: /bin/true, events: [client-connect] }',
      '',
    ].join('\n'),
  );
  const check = loadedBy(dir, ['check', '--config', builtins]);
  assert.match(check.out, /OK \(1 plugin\(s\): exec\)/, check.out);
  assert.ok(check.urls.includes(`${dist}plugins/builtin/exec/index.js`), check.urls.join('\n'));
  assert.deepEqual(
    check.urls.filter((u) => TOOLING.test(u) || u.startsWith(src) || u.endsWith('.ts')),
    [],
  );

  // an operator's .ts plugin: tsx loads, and compiles that file only
  const setup = join(dir, 'setup');
  assert.equal(spawnSync(process.execPath, [FLEXSCRIPT, 'init', '--dir', setup, '--mode', 'hook'], { encoding: 'utf8' }).status, 0);
  const withFiles = loadedBy(dir, ['check', '--config', join(setup, 'flexscript.yaml')]);
  assert.match(withFiles.out, /OK \(\d+ plugin\(s\): deny-list, office-routes, session-log/, withFiles.out);
  assert.ok(
    withFiles.urls.some((u) => TOOLING.test(u)),
    'tsx loaded for the plugin files',
  );
  const typescript = [...new Set(withFiles.urls.filter((u) => u.endsWith('.ts')))].sort();
  assert.deepEqual(
    typescript,
    ['deny-list.ts', 'office-routes.ts', 'session-log.ts'].map((f) => pathToFileURL(join(setup, 'plugins', f)).href),
  );
  assert.deepEqual(
    withFiles.urls.filter((u) => u.startsWith(src)),
    [],
  );
});

test('flexscript console loads the console, never the daemon, its sources or plugins', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-compiled-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dist = `${pathToFileURL(join(REPO, 'dist')).href}/`;
  const config = join(dir, 'console.yaml');
  // no console: section: it stops at the config, after loading what it runs with
  writeFileSync(config, ['instance: t', 'control:', `  socket: ${join(dir, 'control.sock')}`, ''].join('\n'));
  const run = loadedBy(dir, ['console', '--config', config]);
  assert.equal(run.status, 3, run.out);
  assert.match(run.out, /console: missing/);
  assert.ok(run.urls.includes(`${dist}console/console-server.js`), run.urls.join('\n'));
  assert.deepEqual(
    run.urls.filter((u) => /\/dist\/(daemon\/daemon\.js|sources\/|pipeline\/|plugins\/|root\/root-client\.js|cli\/demo\.js|lab\/)/.test(u) || TOOLING.test(u)),
    [],
  );
});

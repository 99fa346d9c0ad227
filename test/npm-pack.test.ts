/**
 * The npm package: `npm pack` on a fresh copy of the sources (no dist/) builds it, and the
 * tarball installs on a machine as an operator installs it, `npm install -g`, into a throwaway
 * prefix, with npm refusing every install script the package does not name
 * (`--strict-allow-scripts`): the native modules build, `flexscript --version`, `init` and
 * `check` (which compiles and type-checks the operator's `.ts` plugins with the installed tsx and
 * typescript) and the demo run from it; then it is uninstalled. The tarball carries its lockfile
 * as npm-shrinkwrap.json, so the install takes the tested versions, from npm's cache when they
 * are there (`--offline`).
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { openvpnBinary } from '../src/lab/openvpn-process.ts';

const REPO = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; allowScripts: Record<string, boolean> };
/** The install scripts a global install must allow: the natives the product builds, and esbuild (a global install cannot deny one). */
const ALLOW = [...Object.entries(pkg.allowScripts).map(([name, allowed]) => (allowed ? name : undefined)), 'esbuild'].filter(Boolean).join(',');

/** The Node.js running the tests, its headers for node-gyp (which then downloads none), when they are beside it. */
const NODE_HOME = dirname(dirname(process.execPath));
const NODE_HEADERS = existsSync(join(NODE_HOME, 'include/node/node.h')) ? { npm_config_nodedir: NODE_HOME } : {};
/**
 * npm with only what an operator's shell has: none of the npm_* variables of an `npm test` around
 * it; the node running the tests first on PATH, so npm, the native modules it builds and the
 * installed command all use it.
 */
const ENV = {
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8',
  ...NODE_HEADERS,
};
const run = (cmd: string, args: readonly string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd, encoding: 'utf8', env: ENV, timeout, maxBuffer: 64 << 20 });
const ok = (r: SpawnSyncReturns<string>, what: string): string => {
  assert.equal(r.status, 0, `${what}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
};
/** npm's words for "the registry cannot be reached and the cache lacks it". */
const OFFLINE = /ENOTCACHED|EAI_AGAIN|ENOTFOUND registry|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/;

const skip = run('sh', ['-c', 'command -v npm'], REPO).status !== 0 ? 'needs npm' : false;

test('npm pack builds the package from the sources; npm install -g installs it with only the named install scripts; it runs --version, init, check and the demo', {
  skip,
  timeout: 1_800_000,
}, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'fxs-npm-pack-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // the demo runs the installed daemon as nobody: the prefix is readable by all, as /usr/local is
  chmodSync(work, 0o755);

  // a fresh copy of the sources: no dist/, no earlier build; this tree's node_modules for the build tools
  const src = join(work, 'src');
  const skipTop = new Set(['node_modules', 'dist', '.git', '.tmp', 'test']);
  cpSync(REPO, src, {
    recursive: true,
    filter: (from) => {
      const rel = from.slice(REPO.length).replace(/^\/+/, '');
      return !skipTop.has(rel.split('/')[0] ?? '') && !rel.endsWith('.deb') && rel !== 'npm-shrinkwrap.json';
    },
  });
  symlinkSync(realpathSync(join(REPO, 'node_modules')), join(src, 'node_modules'));
  assert.equal(existsSync(join(src, 'dist')), false);

  // 1. npm pack: prepack builds dist/ and adds the lockfile as npm-shrinkwrap.json; postpack removes it again
  const out = join(work, 'out');
  mkdirSync(out);
  ok(run('npm', ['pack', '--pack-destination', out], src, 600_000), 'npm pack');
  const tgz = join(out, `openvpn-flexscript-${pkg.version}.tgz`);
  assert.deepEqual(readdirSync(out), [basename(tgz)]);
  assert.equal(existsSync(join(src, 'npm-shrinkwrap.json')), false, 'postpack removed the shrinkwrap from the sources');
  const files = new Set(
    ok(run('tar', ['-tzf', tgz], work), 'tar -t')
      .split('\n')
      .filter(Boolean),
  );
  for (const f of [
    'dist/cli/main.js',
    'dist/index.d.ts',
    'bin/flexscript.js',
    'bin/flexscript-root.js',
    'hook/flexscript-hook',
    'src/index.ts',
    'examples/plugins/deny-list.ts',
    'npm-shrinkwrap.json',
  ])
    assert.ok(files.has(`package/${f}`), `${f} is in the package`);
  for (const f of files)
    assert.doesNotMatch(f, /^package\/(test\/|tsconfig|biome|knip|packaging\/|\.ci\/|dist\/\.build-stamp|.*\.test\.(ts|js)$)/, `${f} is not for the package`);
  // nothing of the package's own runs at install: npm counts a tarball's `prepare` as an install script
  const packed = JSON.parse(ok(run('tar', ['-xzOf', tgz, 'package/package.json'], work), 'tar -x package.json')) as { scripts: Record<string, string> };
  assert.deepEqual(
    Object.keys(packed.scripts).filter((s) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(s)),
    [],
  );

  // 2. npm install -g, as strict as npm gets: an install script not allowed stops the install
  const prefix = join(work, 'prefix');
  mkdirSync(join(prefix, 'lib'), { recursive: true });
  const install = (cache: '--offline' | '--prefer-offline') =>
    run(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        cache,
        '--strict-allow-scripts',
        `--allow-scripts=${ALLOW}`,
        '--no-audit',
        '--no-fund',
        '--foreground-scripts',
        tgz,
      ],
      work,
      1_500_000,
    );
  let installed = install('--offline');
  // what npm's cache lacks comes from the registry
  if (installed.status !== 0 && /ENOTCACHED/.test(installed.stderr)) installed = install('--prefer-offline');
  if (installed.status !== 0 && OFFLINE.test(installed.stderr))
    return t.skip(`npm cannot reach the registry and its cache lacks a package: ${OFFLINE.exec(installed.stderr)?.[0]}`);
  ok(installed, 'npm install -g');
  assert.doesNotMatch(installed.stderr, /install scripts not yet covered by allowScripts/);
  const flexscript = join(prefix, 'bin/flexscript');
  const home = join(prefix, 'lib/node_modules/openvpn-flexscript');
  // the natives were built here; no development package came along
  assert.ok(existsSync(join(home, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')));
  assert.equal(existsSync(join(home, 'node_modules/@biomejs')), false, 'no development packages');
  for (const runtime of ['tsx', 'typescript', 'argon2']) assert.ok(existsSync(join(home, 'node_modules', runtime)), `${runtime} is installed`);

  // 3. the installed command
  assert.equal(ok(run(flexscript, ['--version'], work), 'flexscript --version').trim(), pkg.version);
  const setup = join(work, 'etc');
  ok(run(flexscript, ['init', '--dir', setup, '--mode', 'management'], work), 'flexscript init');
  // the plugin copies import their types from 'openvpn-flexscript': the installed package
  assert.match(
    ok(run(flexscript, ['check', '--config', join(setup, 'flexscript.yaml')], work, 300_000), 'flexscript check'),
    /OK \(4 plugin\(s\): deny-list, office-routes, session-log, accounting\)/,
  );

  await t.test(
    'the demo, from the installed package',
    {
      skip: process.getuid?.() !== 0 ? 'the demo needs root' : !existsSync(openvpnBinary()) ? 'the demo needs openvpn' : false,
    },
    () => {
      const demo = ok(run(flexscript, ['demo', '--clients', '3', '--duration', '1'], work, 600_000), 'flexscript demo');
      assert.match(demo, /DENIED {6}"lost-laptop-17" by plugin deny-list/);
      assert.match(demo, /2 of 3 clients connected/);
    },
  );

  // 4. and away again
  ok(run('npm', ['uninstall', '--global', '--prefix', prefix, 'openvpn-flexscript'], work), 'npm uninstall -g');
  assert.equal(existsSync(flexscript), false);
  assert.equal(existsSync(home), false);
});

test("package.json's allowScripts covers every install script in the lockfile, exactly: npm ci --strict-allow-scripts accepts it, and refuses without it", {
  skip,
}, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'fxs-allow-scripts-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // the policy and the lockfile, without the scripts of the tree itself (the build)
  const { scripts: _scripts, ...manifest } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  const ci = (m: Record<string, unknown>) => {
    const dir = mkdtempSync(join(work, 'project-'));
    cpSync(join(REPO, 'package-lock.json'), join(dir, 'package-lock.json'));
    spawnSync('sh', ['-c', 'cat > package.json'], { cwd: dir, input: JSON.stringify(m) });
    // --dry-run: the strict check runs on the lockfile's tree, and nothing is installed
    return run('npm', ['ci', '--dry-run', '--strict-allow-scripts', '--offline', '--no-audit', '--no-fund'], dir);
  };
  const allowed = ci(manifest);
  if (allowed.status !== 0 && OFFLINE.test(allowed.stderr)) return t.skip(`npm cannot read the lockfile's packages: ${OFFLINE.exec(allowed.stderr)?.[0]}`);
  ok(allowed, 'npm ci --strict-allow-scripts');
  assert.deepEqual(
    manifest.allowScripts,
    { argon2: true, 'better-sqlite3': true, esbuild: false },
    'the natives build; esbuild only checks its binary, which tsx does not need',
  );
  const { allowScripts: _policy, ...without } = manifest;
  const refused = ci(without);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /ESTRICTALLOWSCRIPTS/);
  // the policy names exactly the packages with install scripts
  const pending = [...refused.stderr.matchAll(/^npm error {3}(\S+)@\S+ \(/gm)].map((m) => m[1]).sort();
  assert.deepEqual(pending, Object.keys(manifest.allowScripts as object).sort());
});

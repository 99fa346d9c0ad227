/**
 * No `flexscript` command reads compiled code from, or writes anything into, a temp directory
 * another user can write. The product runs as compiled JavaScript; what is still compiled at
 * run time is an operator's `.ts` plugin, through tsx. The attack: a local user creates the
 * compile cache root would use (`tsx-0`, mode 0777) and plants compiled modules that run
 * whatever they like as root; or listens on the socket there through which tsx offers a parent
 * process the list of files it loaded.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLEXSCRIPT, REPO, RUN_AS } from '../../src/lab/daemon-process.ts';

// The CLI as it ran before it was compiled: the sources through tsx, here with its cache on.
const MAIN_URL = new URL('../../src/cli/main.ts', import.meta.url).href;
const TSX_API_URL = import.meta.resolve('tsx/esm/api');

/** Every entry under dir, with its size and modification time, to see that nothing changed. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      out.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

test('a compile cache planted in the temp directory by another user never runs, and no verb writes there', (t) => {
  const shared = mkdtempSync(join(tmpdir(), 'fxs-shared-tmp-'));
  const mine = mkdtempSync(join(tmpdir(), 'fxs-root-only-'));
  t.after(() => {
    rmSync(shared, { recursive: true, force: true });
    rmSync(mine, { recursive: true, force: true });
  });
  chmodSync(shared, 0o1777);
  const marker = join(mine, 'planted-code-ran');

  const setup = join(mine, 'setup');
  const config = join(setup, 'flexscript.yaml');
  const users = join(mine, 'users');
  const verbs: string[][] = [
    ['--help'],
    ['init', '--dir', setup, '--mode', 'hook'],
    ['check', '--config', config],
    ['openvpn-config', '--config', config, '--mode', 'hook'],
    ['status', '--config', config],
    ['sessions', '--config', config],
    ['kill', 'alice', '--config', config],
    ['passwd', 'alice', '--file', users],
    ['run', '--config', join(mine, 'no-such-config.yaml')],
  ];
  const input = 'secret-pass\nsecret-pass\n';

  // What the attacker needs: the entries a cache-using tsx would look up. Made here the way a
  // CLI with tsx's disk cache on would make them (every verb, so every module a verb loads is
  // there, the plugins init writes included), then handed to another user.
  const cachedCli = join(mine, 'cached-cli.mjs');
  writeFileSync(cachedCli, `const { register } = await import(${JSON.stringify(TSX_API_URL)});\nregister();\nawait import(${JSON.stringify(MAIN_URL)});\n`);
  const runCached = (argv: string[]) =>
    spawnSync(process.execPath, [cachedCli, ...argv], { cwd: REPO, encoding: 'utf8', input, env: { ...process.env, TMPDIR: shared } });
  for (const argv of verbs) assert.ok(runCached(argv).status !== null);
  const cache = join(shared, 'tsx-0');
  // tsx writes an entry after compiling; a CLI that exits first leaves it empty (tsx then compiles
  // afresh), which happens more or less often with each Node.js: only whole entries are planted
  const entries = readdirSync(cache)
    .filter((f) => /^\d+-/.test(f))
    .flatMap((f) => {
      try {
        return [{ f, entry: JSON.parse(readFileSync(join(cache, f), 'utf8')) as { code: string } }];
      } catch {
        return [];
      }
    });
  assert.ok(entries.length > 10, `the cache holds compiled modules (${entries.length})`);
  const payload = `process.getBuiltinModule('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran as uid ' + process.getuid() + '\\n', { flag: 'a' });\n`;
  for (const { f, entry } of entries) {
    entry.code = payload + entry.code;
    writeFileSync(join(cache, f), JSON.stringify(entry));
  }
  for (const f of readdirSync(cache)) chownSync(join(cache, f), RUN_AS.uid, RUN_AS.gid);
  chownSync(cache, RUN_AS.uid, RUN_AS.gid);
  chmodSync(cache, 0o777);

  // the plant works: a cache-using loader runs it as root, for the CLI and for the operator's
  // .ts plugins that init wrote (the path the compiled CLI still compiles at run time)
  assert.equal(runCached(['--help']).status, 0);
  assert.match(readFileSync(marker, 'utf8'), /^ran as uid 0$/m);
  rmSync(marker);
  const pluginOnly = join(mine, 'cached-plugin.mjs');
  writeFileSync(
    pluginOnly,
    `const { register } = await import(${JSON.stringify(TSX_API_URL)});\nregister();\nawait import(${JSON.stringify(join(setup, 'plugins', 'deny-list.ts'))});\n`,
  );
  assert.equal(spawnSync(process.execPath, [pluginOnly], { cwd: REPO, encoding: 'utf8', env: { ...process.env, TMPDIR: shared } }).status, 0);
  assert.match(readFileSync(marker, 'utf8'), /^ran as uid 0$/m);
  rmSync(marker);
  rmSync(setup, { recursive: true, force: true });
  rmSync(users, { force: true });

  const before = snapshot(shared);
  for (const argv of verbs) {
    const r = spawnSync(process.execPath, [FLEXSCRIPT, ...argv], { cwd: REPO, encoding: 'utf8', input, env: { ...process.env, TMPDIR: shared } });
    assert.ok(r.status !== null, `${argv[0]} ended`);
    assert.doesNotMatch(r.stderr, /tsx-0|EACCES/, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(existsSync(marker), false, `flexscript ${argv.join(' ')} ran the planted code`);
    // check loads init's .ts plugins: the planted entries for them were there to be read
    if (argv[0] === 'check') assert.match(r.stdout, /OK \(\d+ plugin\(s\): deny-list, office-routes, session-log/, r.stdout + r.stderr);
  }
  assert.ok(existsSync(config), 'init wrote its setup (the verbs really ran)');
  assert.deepEqual(snapshot(shared), before, 'nothing in the shared temp directory was written or changed');
});

test('the CLI works when the temp directory is not writable', (t) => {
  const locked = mkdtempSync(join(tmpdir(), 'fxs-locked-tmp-'));
  t.after(() => rmSync(locked, { recursive: true, force: true }));
  chmodSync(locked, 0o755);
  mkdirSync(join(locked, 'x'));
  const r = spawnSync('setpriv', ['--reuid', RUN_AS.user, '--regid', RUN_AS.group, '--clear-groups', '--', process.execPath, FLEXSCRIPT, '--help'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: locked },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: flexscript/);
  assert.deepEqual(readdirSync(locked), ['x']);
});

test('no verb offers its loaded files on a socket another user listens on in the temp directory', async (t) => {
  const shared = mkdtempSync(join(tmpdir(), 'fxs-shared-tmp-'));
  const mine = mkdtempSync(join(tmpdir(), 'fxs-root-only-'));
  t.after(() => {
    rmSync(shared, { recursive: true, force: true });
    rmSync(mine, { recursive: true, force: true });
  });
  chmodSync(shared, 0o1777);
  const setup = join(mine, 'setup');
  const config = join(setup, 'flexscript.yaml');
  assert.equal(spawnSync(process.execPath, [FLEXSCRIPT, 'init', '--dir', setup, '--mode', 'hook'], { encoding: 'utf8' }).status, 0);

  // Another user's socket where tsx looks for its parent process: tsx-0/<parent pid>.pipe.
  // This process is the parent of every verb started below.
  const dir = join(shared, 'tsx-0');
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  const heard: string[] = [];
  const server = createServer((socket) => {
    heard.push('connection');
    socket.on('data', (d) => heard.push(d.toString('utf8')));
  });
  server.listen(join(dir, `${process.pid}.pipe`));
  await once(server, 'listening');
  t.after(() => server.close());
  chownSync(dir, RUN_AS.uid, RUN_AS.gid);

  for (const argv of [['--help'], ['check', '--config', config], ['openvpn-config', '--config', config, '--mode', 'hook']]) {
    const child = spawn(process.execPath, [FLEXSCRIPT, ...argv], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: shared } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.ok(code !== null, `${argv[0]} ended`);
    if (argv[0] === 'check') assert.match(out, /OK \(\d+ plugin\(s\): deny-list/, out);
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(heard, [], 'a verb connected to the socket in the shared temp directory');
});

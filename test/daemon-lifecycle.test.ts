/**
 * The daemon as an operator runs it: as nobody, reloaded with SIGHUP (a bad config is refused
 * and the running one kept), stopped cleanly with SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../src/lab/wait.ts';
import { runHook } from './support/hook-runner.ts';
import { FLEXSCRIPT, RUN_AS, lifecycleOf, ownedDir, startDaemon, writeConfig } from '../src/lab/daemon-process.ts';

const DENY_LIST = new URL('../examples/plugins/deny-list.ts', import.meta.url).pathname;

function config(runDir: string, names: string, extra = ''): string {
  return `instance: life\nhook:\n  dir: ${runDir}\n  group: nogroup\nplugins:\n  - path: ${DENY_LIST}\n    options:\n      names: [${names}]\n${extra}`;
}

test('SIGHUP reloads a valid config, refuses an invalid one and keeps serving; SIGTERM stops cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-life-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = join(work, 'run');
  const path = writeConfig(dir, config(runDir, 'mallory'));
  const daemon = await startDaemon(path, join(dir, 'daemon.log'));
  t.after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  const connect = async (cn: string) => {
    n++;
    const files = { cfg: join(work, `cfg${n}`), deferred: join(work, `def${n}`) };
    for (const f of Object.values(files)) {
      writeFileSync(f, '', { mode: 0o600 });
      chownSync(f, RUN_AS.uid, RUN_AS.gid);
    }
    const r = await runHook([runDir, 'defer', 'deny', '1', files.cfg], {
      script_type: 'client-connect',
      common_name: cn,
      trusted_ip: '127.0.0.1',
      trusted_port: String(1000 + n),
      client_connect_config_file: files.cfg,
      client_connect_deferred_file: files.deferred,
    });
    assert.equal(r.code, 0, r.stderr);
    return waitFor(`answer for ${cn}`, () => ({ '0': 'deny', '1': 'accept' })[readFileSync(files.deferred, 'utf8')]);
  };

  assert.equal(await connect('mallory'), 'deny');
  assert.equal(await connect('trent'), 'accept');

  // a broken config: the reload is refused with file, line and field, the old plugins stay
  writeFileSync(path, config(runDir, 'trent', 'colour: blue\n'));
  daemon.signal('SIGHUP');
  const refused = await daemon.waitForEvent('reload refused', lifecycleOf('reload-failed'));
  assert.deepEqual(refused.data.problems, [`${path}:9: colour: unknown key`]);
  // for the operator: the log names the problem with file, line and field too
  const logged = await daemon.waitForLog('reload refused in the log', (l) => l.msg === 'reload refused; keeping the running config and plugins');
  assert.deepEqual(logged.problems, [`${path}:9: colour: unknown key`]);
  assert.equal(await connect('mallory'), 'deny');
  assert.equal(await connect('trent'), 'accept');

  // a valid one takes effect
  writeFileSync(path, config(runDir, 'trent'));
  daemon.signal('SIGHUP');
  await daemon.waitForEvent(
    'reloaded',
    lifecycleOf('reloaded', (m) => m.plugins.length > 0),
  );
  assert.equal(await connect('mallory'), 'accept');
  assert.equal(await connect('trent'), 'deny');

  assert.ok(existsSync(join(runDir, 'daemon.pid')));
  assert.equal(await daemon.stop(), 0);
  assert.ok(daemon.events().some(lifecycleOf('stopping')), 'watchers saw it stop');
  assert.ok(
    daemon.logs().some((l) => l.msg === 'flexscript daemon stopped'),
    'the operator log says it stopped',
  );
  assert.equal(existsSync(join(runDir, 'daemon.pid')), false, 'the pid file is removed, so hooks fail closed at once');
});

test('flexscript check and the daemon refuse a config with a bad plugin option, naming file and line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-life-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(ownedDir(join(dir, 'work')), 'run');
  const path = writeConfig(dir, config(runDir, '42, {a: 1}'));
  const daemon = await startDaemon(path, join(dir, 'daemon.log'), { wait: false });
  assert.notEqual(await daemon.exited, 0);
  const check = spawnSync(process.execPath, [FLEXSCRIPT, 'check', '--config', path], { encoding: 'utf8' });
  assert.equal(check.status, 3);
  assert.equal(
    check.stderr,
    `${path}:8: plugins[0].options.names[0]: Invalid input: expected string, received number\n${path}:8: plugins[0].options.names[1]: Invalid input: expected string, received object\n`,
  );
  assert.match(
    readFileSync(join(dir, 'daemon.log'), 'utf8'),
    new RegExp(`${path}:8: plugins\\[0\\]\\.options\\.names\\[0\\]: Invalid input: expected string, received number`),
  );
});

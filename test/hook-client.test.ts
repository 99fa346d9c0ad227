/**
 * The hook client against the real daemon, driven the way OpenVPN drives it (same env, files
 * and arguments, run by dash as OpenVPN's unprivileged user), without OpenVPN in the way: the
 * mechanics of deferral, waiting, time limits, fail-closed and concurrency.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../src/lab/wait.ts';
import { runHook } from './support/hook-runner.ts';
import { RUN_AS, ownedDir, readJsonLines, startDaemon, writeConfig, type DaemonHandle } from '../src/lab/daemon-process.ts';
import { RECORDER } from './support/paths.ts';
import { routeFor } from './fixtures/plugins/recorder.ts';

function setup(t: { after(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hook-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = join(work, 'run');
  const records = join(work, 'records.jsonl');
  const config = writeConfig(
    dir,
    [
      'instance: hooktest',
      'hook:',
      `  dir: ${runDir}`,
      '  group: nogroup',
      '  timeout: 1s',
      '  events:',
      '    learn-address: { wait: true }',
      'pipeline:',
      '  timeout: 20s',
      'plugins:',
      `  - path: ${RECORDER}`,
      '    options:',
      `      file: ${records}`,
    ].join('\n'),
  );
  const daemons: DaemonHandle[] = [];
  t.after(async () => {
    for (const d of daemons) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async () => {
    const d = await startDaemon(config, join(dir, 'daemon.log'));
    daemons.push(d);
    return d;
  };
  /** Files OpenVPN would create for a deferred client-connect (owned by its user, 0600). */
  const connectFiles = (n: number) => {
    const cfg = join(work, `cc-config-${n}`);
    const deferred = join(work, `cc-deferred-${n}`);
    for (const f of [cfg, deferred]) {
      writeFileSync(f, '', { mode: 0o600 });
      chownSync(f, RUN_AS.uid, RUN_AS.gid);
    }
    return { cfg, deferred };
  };
  const connectEnv = (cn: string, n: number, files: { cfg: string; deferred: string }) => ({
    script_type: 'client-connect',
    common_name: cn,
    trusted_ip: '127.0.0.1',
    trusted_port: String(20000 + n),
    ifconfig_pool_remote_ip: `10.8.${n >> 8}.${n & 255}`,
    client_connect_config_file: files.cfg,
    client_connect_deferred_file: files.deferred,
  });
  return { dir, work, runDir, records, start, connectFiles, connectEnv };
}

test('defer and notify start no program: the hook works with an empty PATH', async (t) => {
  const s = setup(t);
  await s.start();
  const files = s.connectFiles(1);
  const r = await runHook([s.runDir, 'defer', 'deny', '1', files.cfg], s.connectEnv('alice', 1, files), '/nonexistent');
  assert.equal(r.code, 0, r.stderr);
  await waitFor('deferred answer', () => readFileSync(files.deferred, 'utf8') === '1');
  assert.equal(readFileSync(files.cfg, 'utf8'), `push "${routeFor('alice')}"\n`);
  const n = await runHook(
    [s.runDir, 'notify', 'allow', '1'],
    {
      script_type: 'client-disconnect',
      common_name: 'alice',
      trusted_ip: '127.0.0.1',
      trusted_port: '20001',
      bytes_received: '10',
      bytes_sent: '20',
      time_duration: '3',
    },
    '/nonexistent',
  );
  assert.equal(n.code, 0, n.stderr);
  const rec = await waitFor('disconnect record', () => readJsonLines(s.records).find((r) => r.event === 'client-disconnect'));
  assert.deepEqual(rec, { event: 'client-disconnect', commonName: 'alice', bytesReceived: 10, bytesSent: 20, duration: 3, missed: false, stateKept: true });
});

test('100 hooks at once each get their own answer', async (t) => {
  const s = setup(t);
  await s.start();
  const runs = Array.from({ length: 100 }, (_, n) => {
    const files = s.connectFiles(n);
    const cn = n % 10 === 0 ? `deny-${n}` : `storm-${n}`;
    return runHook([s.runDir, 'defer', 'deny', '1', files.cfg], s.connectEnv(cn, n, files)).then((r) => ({ n, cn, files, r }));
  });
  for (const { n, cn, files, r } of await Promise.all(runs)) {
    assert.equal(r.code, 0, r.stderr);
    const answer = await waitFor(`answer for ${cn}`, () => readFileSync(files.deferred, 'utf8').replace('2', '') || undefined);
    if (cn.startsWith('deny-')) {
      assert.equal(answer, '0', cn);
      assert.equal(readFileSync(files.cfg, 'utf8'), 'disable\n', cn);
    } else {
      assert.equal(answer, '1', cn);
      assert.equal(readFileSync(files.cfg, 'utf8'), `push "route 10.200.${n}.0 255.255.255.0"\n`, cn);
    }
  }
  assert.deepEqual(readdirSync(join(s.runDir, 'spool')), [], 'every spool file was consumed');
});

test('a waiting hook gets the veto, and gives up at its time limit when no answer comes', async (t) => {
  const s = setup(t);
  await s.start();
  const ok = await runHook([s.runDir, 'wait', 'deny', '1', 'add', '10.8.0.7', 'alice'], { script_type: 'learn-address' });
  assert.equal(ok.code, 0, ok.stderr);
  const veto = await runHook([s.runDir, 'wait', 'deny', '1', 'add', '10.98.0.1', 'alice'], { script_type: 'learn-address' });
  assert.equal(veto.code, 1);
  assert.match(veto.stderr, /denied: 10\.98\.0\.0\/16 is not for clients/);
  // the plugin never answers 10.99.x; the hook must not wait past its 1 s limit
  const hung = await runHook([s.runDir, 'wait', 'deny', '1', 'add', '10.99.0.1', 'alice'], { script_type: 'learn-address' });
  assert.equal(hung.code, 1);
  assert.match(hung.stderr, /no answer within 1s; denying/);
  const allowed = await runHook([s.runDir, 'wait', 'allow', '1', 'add', '10.99.0.2', 'alice'], { script_type: 'learn-address' });
  assert.equal(allowed.code, 0);
  assert.match(allowed.stderr, /no answer within 1s; allowing/);
});

test('with the daemon stopped, connects are denied at once and notifications wait in the spool', async (t) => {
  const s = setup(t);
  const d = await s.start();
  await d.stop();
  const files = s.connectFiles(1);
  const r = await runHook([s.runDir, 'defer', 'deny', '1', files.cfg], s.connectEnv('bob', 1, files));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flexscript-hook\[client-connect\]: daemon not running .*; denying \(on-unreachable: deny\)/);
  const tls = await runHook([s.runDir, 'wait', 'deny', '1', '0', 'CN=bob'], { script_type: 'tls-verify', X509_0_CN: 'bob' });
  assert.equal(tls.code, 1);
  const n = await runHook([s.runDir, 'notify', 'allow', '1'], {
    script_type: 'client-disconnect',
    common_name: 'bob',
    trusted_ip: '127.0.0.1',
    trusted_port: '20001',
    bytes_received: '1',
    bytes_sent: '2',
    time_duration: '3',
  });
  assert.equal(n.code, 0, n.stderr);
  assert.equal(readdirSync(join(s.runDir, 'spool')).length, 1);
  // the next daemon start processes what was queued: no record lost
  await s.start();
  const rec = await waitFor('queued disconnect', () => readJsonLines(s.records).find((x) => x.event === 'client-disconnect'));
  assert.equal(rec.commonName, 'bob');
  assert.deepEqual(readdirSync(join(s.runDir, 'spool')), []);
});

test('hostile common names reach plugins as exact strings and nothing runs', async (t) => {
  const s = setup(t);
  await s.start();
  const marker = join(s.dir, 'pwned');
  const names = [`a;touch ${marker}`, `$(touch ${marker})`, `\`touch ${marker}\``, `it's "both"`, `x'; touch ${marker}; '`, 'Zoë 雪 \\n'];
  for (const [n, cn] of names.entries()) {
    const files = s.connectFiles(n);
    const r = await runHook([s.runDir, 'defer', 'deny', '1', files.cfg], s.connectEnv(cn, n, files));
    assert.equal(r.code, 0, r.stderr);
    await waitFor(`answer for ${cn}`, () => readFileSync(files.deferred, 'utf8') === '1');
  }
  const seen = readJsonLines(s.records)
    .filter((r) => r.event === 'client-connect')
    .map((r) => r.commonName);
  assert.deepEqual(seen, names);
  assert.equal(existsSync(marker), false, 'no command in a common name was executed');
});

test('a user-pass-verify the daemon cannot be rung for leaves no password in the spool', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hook-'));
  chmodSync(dir, 0o755);
  // a live process of OpenVPN's user stands in for the daemon; the ring refuses that user
  const sleeper = spawn('setpriv', ['--reuid', RUN_AS.user, '--regid', RUN_AS.group, '--clear-groups', '--', 'sleep', '60'], { stdio: 'ignore' });
  t.after(() => {
    sleeper.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor("the stand-in runs as OpenVPN's user", () => readFileSync(`/proc/${sleeper.pid}/status`, 'utf8').includes(`Uid:\t${RUN_AS.uid}\t`));
  const runDir = ownedDir(join(dir, 'run'));
  ownedDir(join(runDir, 'spool'));
  writeFileSync(join(runDir, 'daemon.pid'), `${sleeper.pid}\n`, { mode: 0o644 });
  execFileSync('mkfifo', ['-m', '0600', join(runDir, 'ring')]);
  const r = await runHook([runDir, 'defer', 'deny', '1'], {
    script_type: 'user-pass-verify',
    username: 'bob',
    password: 'Spool-Leak-1',
    auth_control_file: join(dir, 'acf'),
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flexscript-hook\[user-pass-verify\]: cannot ring .*; denying/);
  assert.deepEqual(readdirSync(join(runDir, 'spool')), []);
});

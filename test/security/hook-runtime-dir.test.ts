/**
 * What a member of `hook.group` can leave in the runtime directory for the daemon's next start:
 * a FIFO as the pid file (a plain read blocks until someone writes to it), a FIFO of its own as
 * the ring. The daemon must start, own its ring, and serve hooks.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { RUN_AS, ownedDir, startDaemon, writeConfig } from '../../src/lab/daemon-process.ts';
import { RECORDER } from '../support/paths.ts';
import { runHook } from '../support/hook-runner.ts';

const GROUP_MEMBER = RUN_AS.uid + 1000;

test("a FIFO planted as the pid file or the ring neither stalls nor stops the daemon's start", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hookrun-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = ownedDir(join(work, 'run'));
  ownedDir(join(runDir, 'spool'));
  ownedDir(join(runDir, 'reply'));
  const config = writeConfig(
    dir,
    [
      'instance: rundir',
      'hook:',
      `  dir: ${runDir}`,
      '  group: nogroup',
      'plugins:',
      `  - path: ${RECORDER}`,
      '    options:',
      `      file: ${join(work, 'records.jsonl')}`,
    ].join('\n'),
  );
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', ['-m', '0660', join(runDir, 'daemon.pid')]);
  chownSync(join(runDir, 'daemon.pid'), GROUP_MEMBER, RUN_AS.gid);
  execFileSync('mkfifo', ['-m', '0660', join(runDir, 'ring')]);
  chownSync(join(runDir, 'ring'), GROUP_MEMBER, RUN_AS.gid);

  const daemon = await startDaemon(config, join(dir, 'daemon.log'));
  t.after(() => daemon.stop());
  assert.equal(lstatSync(join(runDir, 'ring')).uid, RUN_AS.uid, "the ring is the daemon's own");
  assert.equal(readFileSync(join(runDir, 'daemon.pid'), 'utf8').trim(), String(daemon.pid));
  const files = ['cfg', 'deferred'].map((n) => join(work, n));
  for (const f of files) {
    writeFileSync(f, '', { mode: 0o600 });
    chownSync(f, RUN_AS.uid, RUN_AS.gid);
  }
  const env = {
    script_type: 'client-connect',
    common_name: 'carol',
    trusted_ip: '127.0.0.1',
    trusted_port: '20001',
    ifconfig_pool_remote_ip: '10.8.0.9',
    client_connect_config_file: files[0]!,
    client_connect_deferred_file: files[1]!,
  };
  const r = await runHook([runDir, 'defer', 'deny', '1', files[0]!], env);
  assert.equal(r.code, 0, r.stderr);
  await waitFor('the deferred answer', () => readFileSync(files[1]!, 'utf8') === '1');
});

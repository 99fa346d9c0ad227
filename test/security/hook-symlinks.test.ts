/**
 * Root and the runtime directory. OpenVPN runs `up` (and `route-up`) as root, before it drops
 * privileges, while any member of `hook.group` may create entries in DIR and DIR/spool. These
 * tests plant links there for the very names the hook will use (the hook's pid is known: the
 * planting shell execs the hook, which keeps its pid) and run the hook as root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { REPO, RUN_AS, ownedDir, readJsonLines, startDaemon, writeConfig } from '../../src/lab/daemon-process.ts';
import { modeLab } from '../e2e/mode-lab.ts';
import { runHook } from '../support/hook-runner.ts';

/** Writes names to the daemon's ring FIFO as the hook does (the daemon holds it open for reading). */
function ringDaemon(ring: string, lines: string): void {
  const fd = openSync(ring, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    writeSync(fd, lines);
  } finally {
    closeSync(fd);
  }
}

const ENV_RECORDER = join(REPO, 'test/fixtures/plugins/env-recorder.ts');
const UP_ARGS = ['tun0', '1500', '0', '10.8.0.1', '255.255.255.0', 'init'];
const UP_ENV = { script_type: 'up', dev: 'tun0', tun_mtu: '1500', ifconfig_local: '10.8.0.1', ifconfig_netmask: '255.255.255.0', script_context: 'init' };
/** What a member of hook.group runs: OpenVPN's group, without its user. */
const AS_GROUP_MEMBER = `setpriv --reuid=${RUN_AS.uid + 1000} --regid=${RUN_AS.gid} --clear-groups --`;

async function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hooklinks-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = join(work, 'run');
  const records = join(work, 'records.jsonl');
  const config = writeConfig(
    dir,
    [
      'instance: links',
      'hook:',
      `  dir: ${runDir}`,
      '  group: nogroup',
      '  timeout: 2s',
      'plugins:',
      `  - path: ${ENV_RECORDER}`,
      '    options:',
      `      file: ${records}`,
    ].join('\n'),
  );
  const daemon = await startDaemon(config, join(dir, 'daemon.log'));
  // things only root may write: a file, and a FIFO this test reads from (so an open never blocks)
  const vault = join(dir, 'vault');
  mkdirSync(vault, { mode: 0o700 });
  const victim = join(vault, 'victim');
  writeFileSync(victim, 'precious\n', { mode: 0o600 });
  const trap = join(vault, 'trap');
  execFileSync('mkfifo', ['-m', '0600', trap]);
  const trapFd = openSync(trap, constants.O_RDONLY | constants.O_NONBLOCK);
  t.after(async () => {
    closeSync(trapFd);
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  /** Bytes someone wrote into the trap FIFO. */
  const trapped = (): string => {
    const buf = Buffer.alloc(65536);
    try {
      return buf.subarray(0, readSync(trapFd, buf)).toString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return '';
      throw err;
    }
  };
  const ups = () => readJsonLines(records).filter((r) => r.event === 'up');
  return { dir, runDir, daemon, victim, trap, trapped, ups, spool: join(runDir, 'spool') };
}

test('up run as root writes nothing through links a group member planted in spool/', async (t) => {
  const s = await setup(t);
  // the first name the hook tries leads to a FIFO only root may write, the other seven to a root-owned file
  const plant = [
    `${AS_GROUP_MEMBER} ln -s ${s.trap} ${s.spool}/$$`,
    `for n in 1 2 3 4 5 6 7; do ${AS_GROUP_MEMBER} ln -s ${s.victim} ${s.spool}/$$.$n; done`,
  ].join('\n');
  const r = await runHook([s.runDir, 'notify', 'allow', '5', ...UP_ARGS], UP_ENV, '/usr/bin:/bin', { asRoot: true, before: plant });
  assert.equal(s.trapped(), '', 'root wrote the event into a FIFO it was led to by a planted link');
  assert.equal(readFileSync(s.victim, 'utf8'), 'precious\n');
  // every name was taken: the event is refused, with a line in OpenVPN's log
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /flexscript-hook\[up\]: cannot write to .*spool; allowing \(on-unreachable: allow\)/);
});

test('up run as root does not ring through a link planted at DIR/ring, and the event still arrives', async (t) => {
  const s = await setup(t);
  const ring = join(s.runDir, 'ring');
  renameSync(ring, `${ring}.real`);
  execFileSync('setpriv', [...AS_GROUP_MEMBER.split(' ').slice(1, -1), '--', 'ln', '-s', s.trap, ring]);
  const r = await runHook([s.runDir, 'notify', 'allow', '5', ...UP_ARGS], UP_ENV, '/usr/bin:/bin', { asRoot: true });
  assert.equal(s.trapped(), '', 'root rang through a planted link');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /flexscript-hook\[up\]: daemon not listening; event queued/);
  const [name] = readdirSync(s.spool);
  assert.ok(name, 'the event waits in the spool');
  assert.equal(lstatSync(join(s.spool, name)).uid, RUN_AS.uid, "the spool file was written as the daemon's user, not as root");
  // put the ring back and ring it: the queued event is delivered
  rmSync(ring);
  renameSync(`${ring}.real`, ring);
  ringDaemon(ring, `${name}\n`);
  const [up] = await waitFor('the up event', () => s.ups().length > 0 && s.ups());
  assert.equal((up!.env as Record<string, string>).dev, 'tun0');
});

test("up run as root with nothing planted reaches the daemon as an event of the daemon's user", async (t) => {
  const s = await setup(t);
  const r = await runHook([s.runDir, 'notify', 'allow', '5', ...UP_ARGS], UP_ENV, '/nonexistent', { asRoot: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const [up] = await waitFor('the up event', () => s.ups().length > 0 && s.ups());
  assert.equal((up!.env as Record<string, string>).script_context, 'init');
});

test('up run as root refuses a runtime directory that root owns', async (t) => {
  const s = await setup(t);
  const rootDir = join(s.dir, 'rootrun');
  mkdirSync(join(rootDir, 'spool'), { recursive: true, mode: 0o770 });
  chmodSync(rootDir, 0o770);
  chmodSync(join(rootDir, 'spool'), 0o770);
  execFileSync('chgrp', ['-R', RUN_AS.group, rootDir]);
  const r = await runHook([rootDir, 'notify', 'deny', '5', ...UP_ARGS], UP_ENV, '/usr/bin:/bin', { asRoot: true });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flexscript-hook\[up\]: .*belongs to root.*; denying \(on-unreachable: deny\)/);
  assert.deepEqual(readdirSync(join(rootDir, 'spool')), [], 'root wrote nothing there');
});

test("real OpenVPN runs up as root; the event reaches the daemon, handed over as OpenVPN's user", async (t) => {
  const records = join(tmpdir(), `fxs-up-${process.pid}-${Date.now()}.jsonl`);
  t.after(() => rmSync(records, { force: true }));
  writeFileSync(records, '', { mode: 0o666 });
  chmodSync(records, 0o666);
  const h = await modeLab(t, 'hook', {
    events: ['up', 'client-connect', 'client-disconnect'],
    plugins: [`  - path: ${ENV_RECORDER}`, '    options:', `      file: ${records}`],
  });
  // the lab starts OpenVPN before the daemon (its up found no runtime directory): start it again
  const complaints = () =>
    h.server
      .log()
      .split('\n')
      .filter((l) => l.includes('flexscript-hook[up]'));
  const before = complaints().length;
  const server = await h.restartServer();
  // the daemon reads only spool files of its own user: root's up arrived as OpenVPN's user
  const up = await waitFor('up from OpenVPN', () => readJsonLines(records).find((r) => r.event === 'up'));
  const env = up.env as Record<string, string>;
  assert.equal(env.script_type, 'up');
  assert.equal(env.dev, server.options.dev);
  assert.deepEqual(complaints().slice(before), [], 'the hook logged no problem');
  const client = await h.lab.startClient({ commonName: 'after-up', port: h.port });
  await client.waitConnected();
});

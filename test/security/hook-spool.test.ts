/**
 * What a member of `hook.group` can put into DIR/spool: FIFOs, links to endless or huge files,
 * oversized files, events written by another user. The daemon reads spool files on its single
 * event loop; none of these may stall it, and none may be taken for an event.
 */
import assert from 'node:assert/strict';
import { chownSync, closeSync, constants, lchownSync, openSync, readdirSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUN_AS } from '../../src/lab/daemon-process.ts';
import { modeLab } from '../e2e/mode-lab.ts';

/** Another member of OpenVPN's group (not OpenVPN's user). */
/** Writes names to the daemon's ring FIFO as the hook does (the daemon holds it open for reading). */
function ringDaemon(ring: string, lines: string): void {
  const fd = openSync(ring, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    writeSync(fd, lines);
  } finally {
    closeSync(fd);
  }
}

const GROUP_MEMBER = RUN_AS.uid + 1000;
const HOSTILE = ['900001', '900002', '900003', '900004', '900005'];

test('FIFOs, links, oversized and foreign files in spool/ are refused, and the daemon keeps serving real clients', async (t) => {
  const h = await modeLab(t, 'hook');
  const runDir = join(h.lab.dir, 'work', 'run');
  const spool = join(runDir, 'spool');
  const big = join(h.lab.dir, 'big');
  const size = 4 * 1024 * 1024;
  const fd = openSync(big, 'w', 0o644);
  writeSync(fd, Buffer.alloc(size, 'x'));
  closeSync(fd);
  const plant = () => {
    const own = (p: string, uid = RUN_AS.uid) => lchownSync(p, uid, RUN_AS.gid);
    execFileSync('mkfifo', ['-m', '0660', join(spool, '900001')]);
    own(join(spool, '900001'));
    symlinkSync('/dev/zero', join(spool, '900002'));
    own(join(spool, '900002'));
    symlinkSync(big, join(spool, '900003'));
    own(join(spool, '900003'));
    // shaped like an event, far larger than any environment OpenVPN passes
    writeFileSync(join(spool, '900004'), `export script_type='client-disconnect'\nexport common_name='${'y'.repeat(size)}'\n#end\n`, { mode: 0o660 });
    own(join(spool, '900004'));
    // a well-formed event, but not written by OpenVPN's user
    writeFileSync(
      join(spool, '900005'),
      "export FLEXSCRIPT_MODE='notify'\nexport FLEXSCRIPT_ARGC='0'\nexport script_type='client-disconnect'\nexport common_name='forged'\nexport trusted_ip='127.0.0.1'\nexport trusted_port='1'\nexport bytes_received='1'\nexport bytes_sent='1'\nexport time_duration='1'\n#end\n",
      { mode: 0o660 },
    );
    chownSync(join(spool, '900005'), GROUP_MEMBER, RUN_AS.gid);
  };
  const refusals = () => h.daemon.logs().filter((l) => l.msg === 'spool file refused');

  // rung while the daemon runs
  plant();
  ringDaemon(join(runDir, 'ring'), HOSTILE.map((n) => `${n}\n`).join(''));
  const first = await h.lab.startClient({ commonName: 'after-fifo', port: h.port });
  await first.waitConnected();
  await h.daemon.waitForLog('five refusals', () => refusals().length >= 5);
  const why = refusals()
    .map((l) => `${String(l.file).split('/').pop()}: ${String(l.err)}`)
    .sort();
  assert.match(why[0]!, /^900001: .*not a regular file/);
  assert.match(why[1]!, /^900002: .*symbolic link/);
  assert.match(why[2]!, /^900003: .*symbolic link/);
  assert.match(why[3]!, /^900004: .*larger than/);
  assert.match(why[4]!, /^900005: .*owned by uid 66534, not the daemon's user/);
  assert.deepEqual(
    readdirSync(spool).filter((n) => HOSTILE.includes(n)),
    [],
    'refused entries are removed',
  );

  // left in the spool while the daemon was down: its start reads them
  await h.daemon.stop();
  plant();
  await h.restartDaemon();
  await h.daemon.waitForLog('five refusals at start', () => refusals().length >= 5);
  const second = await h.lab.startClient({ commonName: 'after-restart', port: h.port });
  await second.waitConnected();
  assert.equal(h.recordsOf('client-disconnect').filter((r) => r.commonName === 'forged').length, 0, 'the forged event was never handled');
});

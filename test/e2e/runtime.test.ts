/**
 * The suite tests the Node.js it runs on: the daemon the lab starts and the root stage that
 * daemon starts through sudo run the test runner's own node, not another one found on a path.
 * CI runs the whole suite once per supported major and names it in FLEXSCRIPT_TEST_NODE_MAJOR.
 */
import assert from 'node:assert/strict';
import { readlinkSync, realpathSync } from 'node:fs';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { netnsLab } from '../support/netns-lab.ts';

const isRoot = process.getuid?.() === 0;
const NODE = realpathSync(process.execPath);
const expectedMajor = process.env.FLEXSCRIPT_TEST_NODE_MAJOR;

/** The executable a process runs (what /proc/PID/exe points at). */
const executableOf = (pid: number): string => readlinkSync(`/proc/${pid}/exe`);

test(`the suite runs on Node.js ${expectedMajor ?? '(any: FLEXSCRIPT_TEST_NODE_MAJOR is not set)'}`, {
  skip: !expectedMajor && 'FLEXSCRIPT_TEST_NODE_MAJOR is not set',
}, () => {
  assert.equal(process.versions.node.split('.')[0], expectedMajor, `this run means Node.js ${expectedMajor}, but runs ${process.version} (${NODE})`);
});

test('the daemon and its root stage run on the node under test', { skip: !isRoot && 'needs root' }, async (t) => {
  const n = await netnsLab(t, 'management');
  const daemon = executableOf(n.h.daemon.pid);
  const roots = await waitFor('the root stage', async () => {
    const pids = await n.rootPids();
    return pids.length > 0 ? pids : undefined;
  });
  t.diagnostic(`node under test: ${NODE} ${process.version}`);
  t.diagnostic(`daemon (pid ${n.h.daemon.pid}): ${daemon}`);
  assert.equal(daemon, NODE, `the daemon runs ${daemon}, not the node under test`);
  for (const pid of roots) {
    const root = executableOf(pid);
    t.diagnostic(`root stage (pid ${pid}): ${root}`);
    // sudo finds node on its secure_path, not on the caller's PATH
    assert.equal(root, NODE, `the root stage runs ${root}, not the node under test: put ${NODE} first on sudo's secure_path`);
  }
});

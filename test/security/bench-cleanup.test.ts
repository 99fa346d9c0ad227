/**
 * `flexscript bench` installs a root grant for `nobody` (a sudoers drop-in), a network namespace
 * and OpenVPN processes. Stopped by SIGTERM or SIGHUP in the middle of a run, it must leave none
 * of them behind; and a later run removes the drop-ins and namespaces of a benchmark that was
 * killed outright, never those of one still running.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { FLEXSCRIPT, REPO } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';

const isRoot = process.getuid?.() === 0;
const hasOpenvpn = spawnSync('sh', ['-c', 'command -v openvpn']).status === 0;
const SUDOERS_D = '/etc/sudoers.d';

const dropIns = () => (existsSync(SUDOERS_D) ? readdirSync(SUDOERS_D).filter((n) => n.startsWith('flexscript-bench-')) : []);
const namespaces = () =>
  (spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('fxs-bench-'));
const pidsIn = (netns: string) =>
  (spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
};
/** A Node.js process: by its program (Node.js 24 names its main thread `MainThread`, which is what comm shows). */
const isNode = (pid: number) => {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`)) === 'node';
  } catch {
    return false;
  }
};
/** Gone, or a zombie waiting for its new parent to reap it. */
const gone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
};

/** A pid that was just used and is free now. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}

/** Removes whatever a run left, so a failing test leaves nothing either. */
function cleanupAfter(t: TestContext, before: { dropIns: string[]; namespaces: string[] }, child: () => ChildProcess | undefined, extra: string[]) {
  t.after(() => {
    const c = child();
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // only what this test's benchmark made: another test run may be benchmarking meanwhile
    const ours = (n: string) => c?.pid !== undefined && n.includes(`-${c.pid}-`);
    for (const n of dropIns().filter((d) => ours(d) && !before.dropIns.includes(d))) rmSync(join(SUDOERS_D, n), { force: true });
    for (const f of extra) rmSync(f, { force: true });
    for (const ns of namespaces().filter((n) => ours(n) && !before.namespaces.includes(n))) {
      for (const pid of pidsIn(ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });
}

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  describe(`flexscript bench stopped by ${signal}`, { skip: !isRoot ? 'needs root' : !hasOpenvpn ? 'needs openvpn' : false }, () => {
    test(`${signal} in the middle of a run removes the sudoers drop-in, the namespace and every process it started; stale drop-ins of killed runs are removed first`, async (t) => {
      const before = { dropIns: dropIns(), namespaces: namespaces() };
      // what a benchmark killed outright (SIGKILL) left: a grant whose pid is dead, and an older
      // version's grant for a root config that is gone; and one of a run still alive
      const stale = join(SUDOERS_D, `flexscript-bench-${deadPid()}-0badc0`);
      const legacy = join(SUDOERS_D, 'flexscript-bench-01dc0d');
      const live = join(SUDOERS_D, `flexscript-bench-${process.pid}-a11ce0`);
      // harmless rules (false as root), valid for sudo, shaped like the real ones
      const grant = (config: string) => `nobody ALL=(root) NOPASSWD: /bin/false --config ${config}\n`;
      writeFileSync(stale, grant('/tmp/flexscript-bench-1-gone00/root.yaml'), { mode: 0o440 });
      writeFileSync(legacy, grant('/tmp/flexscript-bench-gone00/root.yaml'), { mode: 0o440 });
      writeFileSync(live, grant('/tmp/flexscript-bench-2-alive0/root.yaml'), { mode: 0o440 });
      let child: ChildProcess | undefined;
      cleanupAfter(t, before, () => child, [stale, legacy, live]);

      // several runs of a mode with the root stage: the signal always lands inside one
      child = spawn(process.execPath, [FLEXSCRIPT, 'bench', '--clients', '3', '--modes', 'management,management,management,management'], {
        cwd: REPO,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += String(c)));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child!.once('exit', (code, sig) => resolve({ code, signal: sig })),
      );

      // named after the benchmark's pid: another benchmark running meanwhile (another test run) is not this one
      const ours = (n: string) => n.includes(`-${child!.pid}-`);
      const dropIn = await waitFor(
        'the bench drop-in',
        () => dropIns().find((n) => ours(n) && !before.dropIns.includes(n) && ![stale, legacy, live].includes(join(SUDOERS_D, n))),
        { timeoutMs: 120_000, intervalMs: 100 },
      );
      const netns = await waitFor('the bench namespace', () => namespaces().find((n) => ours(n) && !before.namespaces.includes(n)), {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      // OpenVPN (clients, then the server) and the daemon with its root stage running inside
      const started = await waitFor(
        'OpenVPN running in the namespace',
        () => {
          const pids = pidsIn(netns);
          return pids.some((p) => comm(p) === 'openvpn') && pids.some(isNode) ? pids : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 100 },
      );

      child.kill(signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const end = await Promise.race([exited, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 60_000)))]);
      clearTimeout(timer);
      assert.ok(end, `the bench exited after ${signal}; stderr: ${stderr}`);
      assert.equal(existsSync(join(SUDOERS_D, dropIn)), false, `the sudoers drop-in ${dropIn} is removed`);
      assert.ok(!namespaces().includes(netns), `the namespace ${netns} is removed`);
      await waitFor('every process it started gone', () => started.every(gone), { timeoutMs: 15_000, intervalMs: 100 }).catch(() => {
        assert.fail(
          `still running: ${started
            .filter((p) => !gone(p))
            .map((p) => `${p} ${comm(p)}`)
            .join(', ')}`,
        );
      });
      const leftovers = readdirSync('/tmp').filter((n) => n.startsWith(`flexscript-bench-${child!.pid}-`));
      assert.deepEqual(leftovers, [], 'its root-owned folder is removed');
      // removed when the run started
      assert.equal(existsSync(stale), false, 'the drop-in of a dead benchmark was removed');
      assert.equal(existsSync(legacy), false, 'an older drop-in granting a root config that is gone was removed');
      assert.equal(existsSync(live), true, 'the drop-in of a live benchmark stays');
    });
  });
}

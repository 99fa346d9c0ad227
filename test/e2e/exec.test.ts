/**
 * The exec plugin through real OpenVPN, in both modes: a legacy sh script writes a push line
 * into its config file (the client receives it), refuses a common name with exit code 1 (the
 * client sees AUTH_FAILED), and a hostile common name reaches its env byte-exact while nothing
 * else runs.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decisionOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { MODES, modeLab } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const HOSTILE = `x;touch /tmp/fxs-ex1 $(touch /tmp/fxs-ex1) 'q" Zoë`;

const SCRIPT = `#!/bin/sh
# a legacy client-connect script
out=$(dirname "$0")/seen
printf '%s' "$common_name" > "$out/cn.$$"
case $common_name in
  refuse-*) exit 1 ;;
esac
printf 'push "route 10.232.0.0 255.255.0.0"\\n' > "$1"
exit 0
`;

/** Leaves a process in a session of its own, holding the script's output pipes; `hang-*` stays past the limit. */
const ESCAPING = `#!/bin/sh
out=$(dirname "$0")/seen
setsid sleep 60 &
echo $! > "$out/escaped.$$"
case $common_name in
  hang-*) sleep 60 ;;
esac
printf 'push "route 10.233.0.0 255.255.0.0"\\n' > "$1"
exit 0
`;

for (const mode of MODES) {
  describe(`exec plugin, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('a legacy script pushes a route, refuses by exit code, and gets a hostile name as data', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'fxs-exec-e2e-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      chmodSync(dir, 0o755);
      const script = join(dir, 'connect.sh');
      writeFileSync(script, SCRIPT, { mode: 0o755 });
      const seen = join(dir, 'seen');
      mkdirSync(seen, { mode: 0o700 });
      chownSync(seen, RUN_AS.uid, RUN_AS.gid);
      const h = await modeLab(t, mode, {
        pluginTimeout: '10s',
        plugins: ['  - use: exec', '    options:', `      path: ${script}`, '      events: [client-connect]', '      timeout: 5s', '      concurrency: 2'],
      });
      const good = await h.lab.startClient({ commonName: 'legacy-ok', port: h.port });
      const bad = await h.lab.startClient({ commonName: 'refuse-me', port: h.port });
      const hostile = await h.lab.startClient({ commonName: HOSTILE, port: h.port });
      await Promise.all([good.waitConnected(), bad.waitAuthFailed(), hostile.waitConnected()]);
      assert.match(good.pushReply() ?? '', /route 10\.232\.0\.0 255\.255\.0\.0/);
      assert.match(hostile.pushReply() ?? '', /route 10\.232\.0\.0 255\.255\.0\.0/);
      const names = await waitFor('three runs', () => {
        const files = readdirSync(seen);
        return files.length === 3 ? files.map((f) => readFileSync(join(seen, f), 'utf8')) : undefined;
      });
      assert.deepEqual(names.sort(), ['legacy-ok', 'refuse-me', HOSTILE].sort());
      const deny = await h.daemon.waitForEvent('exit code deny', decisionOf({ event: 'client-connect', verdict: 'deny', commonName: 'refuse-me' }));
      assert.equal(deny.data.reason, 'script exited with code 1');
      assert.equal(existsSync('/tmp/fxs-ex1'), false);
    });

    test('a script leaving a setsid grandchild ends at its exit or its time limit; the slot and its temp folder are freed', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'fxs-exec-e2e-'));
      chmodSync(dir, 0o755);
      const script = join(dir, 'connect.sh');
      writeFileSync(script, ESCAPING, { mode: 0o755 });
      const seen = join(dir, 'seen');
      const temp = join(dir, 'tmp');
      for (const d of [seen, temp]) {
        mkdirSync(d, { mode: 0o700 });
        chownSync(d, RUN_AS.uid, RUN_AS.gid);
      }
      t.after(() => {
        // the escaped sleeps are this test's to stop
        for (const f of existsSync(seen) ? readdirSync(seen).filter((n) => n.startsWith('escaped.')) : []) {
          try {
            process.kill(Number(readFileSync(join(seen, f), 'utf8')), 'SIGKILL');
          } catch {
            // gone already
          }
        }
        rmSync(dir, { recursive: true, force: true });
      });
      const h = await modeLab(t, mode, {
        pluginTimeout: '20s',
        plugins: [
          '  - use: exec',
          '    options:',
          `      path: ${script}`,
          '      events: [client-connect]',
          '      timeout: 2s',
          '      concurrency: 1',
          `      tmp-dir: ${temp}`,
        ],
      });
      // one at a time through the single slot: each must be answered long before the plugin's 20 s
      const first = await h.lab.startClient({ commonName: 'escaper-1', port: h.port });
      await first.waitConnected(15_000);
      assert.match(first.pushReply() ?? '', /route 10\.233\.0\.0 255\.255\.0\.0/);
      const hang = await h.lab.startClient({ commonName: 'hang-2', port: h.port });
      await hang.waitAuthFailed(15_000);
      const deny = await h.daemon.waitForEvent('time limit deny', decisionOf({ event: 'client-connect', verdict: 'deny', commonName: 'hang-2' }));
      assert.match(String(deny.data.reason), /longer than 2000 ms and was killed/);
      const next = await h.lab.startClient({ commonName: 'escaper-3', port: h.port });
      await next.waitConnected(15_000);
      assert.equal(readdirSync(seen).filter((n) => n.startsWith('escaped.')).length, 3, 'every run left a grandchild');
      await waitFor('temporary folders removed', () => readdirSync(temp).length === 0, { timeoutMs: 10_000 });
    });
  });
}

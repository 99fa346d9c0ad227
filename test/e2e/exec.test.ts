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
import { RUN_AS } from '../../src/lab/daemon-process.ts';
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
      const deny = await h.daemon.waitForLog('exit code deny', (l) => l.msg === 'client-connect denied' && l.commonName === 'refuse-me');
      assert.equal(deny.reason, 'script exited with code 1');
      assert.equal(existsSync('/tmp/fxs-ex1'), false);
    });
  });
}

/**
 * The firewall fails closed when its nft table was never made: real OpenVPN and the real daemon
 * (both nobody) in a network namespace, the root stage through real sudo. At "boot" the root
 * stage cannot start (its config is writable by a group, so it refuses to run) and the table is
 * not there: a client must be denied, with the reason in the log and in `flexscript status`.
 * Once the cause is fixed, the daemon's restart of the stage (with backoff) puts the table in
 * place and the next client is admitted into its group's set.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { askControl } from '../../src/cli/control.ts';
import { FLEXSCRIPT, ownedDir } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { run } from '../root/harness.ts';
import { MODES } from '../e2e/mode-lab.ts';
import { netnsLab, pushedAddress, TABLE, tableInPlace } from '../support/netns-lab.ts';

const isRoot = process.getuid?.() === 0;

const FIREWALL = ['  - use: firewall', '    options:', '      groups:', '        staff: { common-names: [alice, bob] }'];

for (const mode of MODES) {
  describe(`firewall fails closed without its table, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('the root stage cannot start: connects are denied with the reason; once it can, the next client is admitted into its set', async (t) => {
      const dir = ownedDir(mkdtempSync(join(tmpdir(), 'fxs-fail-closed-')));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const socket = join(dir, 'control.sock');
      const n = await netnsLab(t, mode, { plugins: FIREWALL, extraConfig: ['control:', `  socket: ${socket}`, '  group: nogroup'] });

      // a boot where the root stage refuses to start: its config is writable by a group, and
      // the kernel has no table yet
      await chmod(n.rootConfig, 0o664);
      await n.h.restartDaemon();
      await n.h.daemon.waitForLog('the root stage to fail', (l) => l.msg === 'root stage stopped; restarting', 60_000);
      // (the first daemon's stage may or may not have made it before the restart)
      await run(['ip', 'netns', 'exec', n.netns, 'nft', 'delete', 'table', 'inet', TABLE]);
      assert.doesNotMatch(await n.ruleset(), new RegExp(TABLE), 'no table, no drop rule');

      const denied = await n.h.lab.startClient({ commonName: 'alice', port: n.h.port });
      await denied.waitAuthFailed();
      const why = await n.h.daemon.waitForEvent(
        'the denial',
        (e) => e.channel === 'decision' && e.data.verdict === 'deny' && /nft table is not in place/.test(String(e.data.reason)),
      );
      const reason = String(why.channel === 'decision' && why.data.reason);
      assert.match(reason, /writable by group/, `the reason names the cause: ${reason}`);
      assert.equal(why.channel === 'decision' && why.data.commonName, 'alice');
      assert.equal(n.h.daemon.events().filter((e) => e.channel === 'root-action' && e.data.action === 'set-add').length, 0, 'no address was put in a set');

      // flexscript status says so too
      const status = await askControl(socket, { command: 'status' });
      assert.ok(status.ok);
      assert.equal(status.root?.tableReady, false);
      assert.match(status.root?.problem ?? '', /writable by group/);
      const cli = spawnSync(process.execPath, [FLEXSCRIPT, 'status', '--config', n.h.configPath], { encoding: 'utf8' });
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stderr, /has not put the firewall's nft table in place; new clients are denied: .*writable by group/);

      // the cause fixed: the daemon's next restart of the stage succeeds
      await chmod(n.rootConfig, 0o644);
      await n.h.daemon.waitForEvent('the table in place', tableInPlace, 90_000);
      assert.match(await n.ruleset(), /"drop": null/, 'the chain drops what no group allows');
      const admitted = await n.h.lab.startClient({ commonName: 'bob', port: n.h.port });
      await admitted.waitConnected();
      const address = pushedAddress(admitted.pushReply());
      await waitFor('bob in the staff set', async () => JSON.stringify(await n.setElements('staff')) === JSON.stringify([address]), {
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      const after = await askControl(socket, { command: 'status' });
      assert.ok(after.ok);
      assert.equal(after.root?.tableReady, true);
    });
  });
}

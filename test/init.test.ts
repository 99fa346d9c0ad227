/**
 * `flexscript init` writes a setup that passes `flexscript check`, and never overwrites.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { parseRootConfig } from '../src/root/root-config.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

for (const mode of ['hook', 'management'] as const) {
  test(`init writes a ${mode}-mode setup that passes check, and refuses to overwrite without --force`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const init = flexscript('init', '--dir', dir, '--mode', mode, '--user', 'openvpn', '--group', 'openvpn');
    assert.equal(init.status, 0, init.stderr);
    const check = flexscript('check', '--config', join(dir, 'flexscript.yaml'));
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /OK \(4 plugin\(s\): deny-list, office-routes, session-log, accounting\)/);
    // each directory the config writes into is one the unit creates (in both modes)
    const config = readFileSync(join(dir, 'flexscript.yaml'), 'utf8');
    const unitText = readFileSync(join(dir, 'flexscriptd.service'), 'utf8');
    const created = { '/run/flexscript/': 'RuntimeDirectory=flexscript', '/var/lib/flexscript/': 'StateDirectory=flexscript', '/var/log/flexscript/': 'LogsDirectory=flexscript' };
    for (const [prefix, line] of Object.entries(created)) {
      assert.ok(config.includes(prefix), `the config uses ${prefix}`);
      assert.match(unitText, new RegExp(`^${line}$`, 'm'));
    }
    const lines = readFileSync(join(dir, 'openvpn-server.conf.add'), 'utf8');
    assert.match(lines, mode === 'hook' ? /^client-connect ".*flexscript-hook \/run\/flexscript\/vpn defer deny 5"$/m : /^management \/run\/openvpn\/vpn\.sock unix\nmanagement-client-auth\nmanagement-client-user openvpn$/m);
    const unit = readFileSync(join(dir, 'flexscriptd.service'), 'utf8');
    assert.match(unit, /^User=openvpn$/m);
    assert.match(unit, /^ExecStart=.*flexscript\.js run --config .*flexscript\.yaml$/m);
    assert.match(readFileSync(join(dir, 'plugins/office-routes.ts'), 'utf8'), /from 'openvpn-flexscript'/);
    // the drop-in allows exactly the root stage with the root config, for the daemon's user only
    const sudoers = readFileSync(join(dir, 'sudoers-flexscript'), 'utf8');
    assert.match(sudoers, /^openvpn ALL=\(root\) NOPASSWD: \/\S+\/bin\/flexscript-root\.js --config \/etc\/flexscript\/root\.yaml$/m);
    assert.equal(sudoers.split('\n').filter((l) => l && !l.startsWith('#')).length, 1, 'one rule, nothing broader');
    assert.equal(spawnSync('visudo', ['-cf', join(dir, 'sudoers-flexscript')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).status, 0);
    assert.equal(statSync(join(dir, 'sudoers-flexscript')).mode & 0o777, 0o440);
    // the root config it writes is valid for the root stage
    assert.doesNotThrow(() => parseRootConfig(readFileSync(join(dir, 'root.yaml'), 'utf8'), join(dir, 'root.yaml')));

    writeFileSync(join(dir, 'flexscript.yaml'), 'instance: mine\n');
    const again = flexscript('init', '--dir', dir, '--mode', mode);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /these files exist \(nothing was written; --force overwrites them\)/);
    assert.equal(readFileSync(join(dir, 'flexscript.yaml'), 'utf8'), 'instance: mine\n');
    assert.equal(flexscript('init', '--dir', dir, '--mode', mode, '--force').status, 0);
    assert.notEqual(readFileSync(join(dir, 'flexscript.yaml'), 'utf8'), 'instance: mine\n');
  });
}

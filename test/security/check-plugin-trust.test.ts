/**
 * `flexscript check` and `flexscript openvpn-config` import the config's plugin modules, which
 * runs their code. Run as root, they must not import a module another user can change: the
 * attack is a plugin file (or its directory) that an unprivileged user owns or can write, with
 * code that runs at import. The command refuses with `FILE:LINE: field: problem`, and the code
 * never runs. A root-owned plugin in root-owned directories still loads (and runs), which shows
 * the same setup would have run the planted code.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { FLEXSCRIPT, RUN_AS } from '../../src/lab/daemon-process.ts';

const isRoot = process.getuid?.() === 0;
const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

interface Setup {
  readonly config: string;
  readonly marker: string;
  readonly pluginDir: string;
  readonly plugin: string;
}

/** A root-only directory with a config naming plugins/evil.ts, whose import writes a marker. */
function setup(t: TestContext): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-plugin-trust-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'plugin-code-ran');
  const pluginDir = join(dir, 'plugins');
  mkdirSync(pluginDir, { mode: 0o755 });
  writeFileSync(join(pluginDir, 'package.json'), '{ "type": "module" }\n', { mode: 0o644 });
  const plugin = join(pluginDir, 'evil.ts');
  writeFileSync(
    plugin,
    [
      "import { writeFileSync } from 'node:fs';",
      `writeFileSync(${JSON.stringify(marker)}, 'ran as ' + process.getuid());`,
      "export default { name: 'evil', setup: () => ({}) };",
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(
    config,
    ['instance: office', 'hook:', '  dir: /run/fxs-plugin-trust/vpn', '  group: nogroup', 'plugins:', '  - path: plugins/evil.ts', ''].join('\n'),
    { mode: 0o644 },
  );
  return { config, marker, pluginDir, plugin };
}

/** Both commands refuse with the plugin entry's line and the reason, and the code never ran. */
function refused(s: Setup, reason: RegExp): void {
  for (const args of [
    ['check', '--config', s.config],
    ['openvpn-config', '--config', s.config, '--mode', 'hook'],
  ]) {
    const r = flexscript(...args);
    assert.equal(r.status, 3, `${args[0]} refuses: ${r.stdout}${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `^${s.config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6: plugins\\[0\\]\\.path: plugin file ${s.plugin.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} not loaded: running as root`,
        'm',
      ),
    );
    assert.match(r.stderr, reason);
    assert.equal(existsSync(s.marker), false, `${args[0]} ran the plugin's code as root`);
  }
}

test('as root, a plugin file owned by another user is refused and its code never runs', { skip: isRoot ? false : 'needs root' }, (t) => {
  const s = setup(t);
  chownSync(s.plugin, RUN_AS.uid, RUN_AS.gid);
  refused(s, new RegExp(`${s.plugin.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: owned by uid ${RUN_AS.uid}, not root`));
});

test('as root, a plugin in a directory another user can write is refused and its code never runs', { skip: isRoot ? false : 'needs root' }, (t) => {
  const s = setup(t);
  // the file is root's, but whoever can write the directory can replace it (or add a module it imports)
  chownSync(s.pluginDir, RUN_AS.uid, RUN_AS.gid);
  refused(s, /plugins: owned by uid 65534, not root/);
  chownSync(s.pluginDir, 0, 0);
  chmodSync(s.pluginDir, 0o777);
  refused(s, /plugins: writable by group and others \(mode 0777\)/);
  chmodSync(s.pluginDir, 0o755);
  // a module beside it that another user can change, which the plugin could import
  writeFileSync(join(s.pluginDir, 'helper.ts'), 'export const x = 1;\n', { mode: 0o666 });
  chmodSync(join(s.pluginDir, 'helper.ts'), 0o666);
  refused(s, /helper\.ts: writable by group and others \(mode 0666\)/);
});

test('as root, a root-owned plugin in root-owned directories loads (the same setup does run plugin code)', { skip: isRoot ? false : 'needs root' }, (t) => {
  const s = setup(t);
  const r = flexscript('check', '--config', s.config);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(s.marker), true, 'the trusted plugin was imported');
});

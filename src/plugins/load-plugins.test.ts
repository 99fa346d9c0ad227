import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { ConfigError, formatProblem } from '../errors.ts';
import { parseConfig } from '../config/load-config.ts';
import { offlineServices } from '../daemon/services.ts';
import { createLogger } from '../logger.ts';
import { loadPlugins, pluginServices } from './load-plugins.ts';
import type { RootActions, Services } from './plugin-api.ts';

const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

async function problems(yaml: string, file = '/etc/flexscript/f.yaml'): Promise<string[]> {
  const loaded = parseConfig(yaml, file);
  try {
    await loadPlugins(loaded, log, offlineServices(loaded.config));
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map(formatProblem);
  }
  assert.fail('expected a ConfigError');
}

test('a built-in plugin that does not exist is named with its line and the list of built-ins', async () => {
  const found = await problems('plugins:\n  - use: no-such-plugin\n');
  assert.equal(found.length, 1);
  assert.match(found[0]!, /^\/etc\/flexscript\/f\.yaml:2: plugins\[0\]\.use: no built-in plugin named no-such-plugin \(built-ins: /);
});

test('a plugin entry needs exactly one of path and use', () => {
  for (const [yaml, field] of [
    ['plugins:\n  - name: x\n', 'plugins[0].path: give path'],
    ['plugins:\n  - path: a.ts\n    use: firewall\n', 'plugins[0].use: give path or use, not both'],
  ] as const) {
    try {
      parseConfig(yaml, 'f.yaml');
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.ok(
        err.problems.map(formatProblem).some((p) => p.includes(field)),
        `${field} in ${err.problems.map(formatProblem).join('; ')}`,
      );
    }
  }
});

test('as root, a plugin module another user owns is not imported: its line, the path and the owner are named', {
  skip: process.getuid?.() === 0 ? false : 'needs root',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-load-trust-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'ran');
  const plugin = join(dir, 'p.mjs');
  writeFileSync(
    plugin,
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, '');\nexport default { name: 'p', setup: () => ({}) };\n`,
  );
  chownSync(plugin, 65534, 65534);
  const found = await problems('plugins:\n  - path: p.mjs\n', join(dir, 'f.yaml'));
  assert.equal(found.length, 1);
  assert.ok(found[0]!.startsWith(`${join(dir, 'f.yaml')}:2: plugins[0].path: plugin file ${plugin} not loaded: running as root`), found[0]);
  assert.ok(found[0]!.includes(`${plugin}: owned by uid 65534, not root`), found[0]);
  assert.equal(existsSync(marker), false, 'the module was never imported');
});

test("a plugin's setup gets the services' interface only, not the daemon's object behind it", async () => {
  const calls: string[] = [];
  const root = {
    setAdd: async (g: string, a: string) => void calls.push(`add ${g} ${a}`),
    setRemove: async () => {},
    routeAdd: async () => ({ changed: true }),
    routeRemove: async () => ({ changed: false }),
    conntrackFlush: async () => ({ deleted: 0 }),
    tableStatus: () => ({ ready: true }),
    reconcile: async () => calls.push('reconcile'),
  } satisfies RootActions & { reconcile(): Promise<unknown> };
  const daemon = {
    root,
    rootRules: async () => ({ file: 'root.yaml', groups: ['staff'], allowedRoutes: [], vpnInterfaces: ['tun0'] }),
    sessions: { list: () => [] },
    kill: async () => void calls.push('kill'),
    store: { close: async () => calls.push('store closed') },
    close: async () => calls.push('closed'),
  } satisfies Services & Record<string, unknown>;
  const view = pluginServices(daemon);
  assert.deepEqual(Object.keys(view).sort(), ['kill', 'records', 'root', 'rootRules', 'sessions']);
  assert.deepEqual(Object.keys(view.root!).sort(), ['conntrackFlush', 'routeAdd', 'routeRemove', 'setAdd', 'setRemove', 'tableStatus']);
  assert.equal(view.records, undefined);
  await view.root!.setAdd('staff', '10.8.0.2');
  assert.deepEqual(view.root!.tableStatus!(), { ready: true });
  assert.deepEqual((await view.rootRules!()).groups, ['staff']);
  await view.kill({ id: 's', instance: 'i', commonName: 'c', connectedAt: 0, groups: [] }, 'bye');
  assert.deepEqual(calls, ['add staff 10.8.0.2', 'kill']);
});

test('every built-in in the table is a folder whose index module is that plugin', async () => {
  const [found] = await problems('plugins:\n  - use: no-such-plugin\n');
  const names = /\(built-ins: ([^)]*)\)/.exec(found!)![1]!.split(', ');
  assert.deepEqual(names, ['accounting', 'client-config', 'exec', 'firewall', 'ldap-auth', 'password-auth', 'routes', 'session-limit', 'totp', 'web-login']);
  for (const name of names) {
    const mod = (await import(`./builtin/${name}/index.ts`)) as { default: { name: string; setup: unknown } };
    assert.equal(mod.default.name, name);
    assert.equal(typeof mod.default.setup, 'function');
  }
});

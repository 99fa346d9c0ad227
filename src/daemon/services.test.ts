import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../logger.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { PluginInstance } from '../plugins/plugin-api.ts';
import { SessionTable } from '../sessions/session-table.ts';
import { DaemonServices, offlineServices } from './services.ts';
import { configSchema } from '../config/config-schema.ts';

const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const plugin = (name: string, instance: PluginInstance): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs: 100, instance });

test('the desired kernel state merges every plugin wish for the live sessions; a failing plugin is skipped', async () => {
  const services = await DaemonServices.open(configSchema.parse({}), log);
  const table = new SessionTable();
  table.add(table.create({ via: 'management', instance: 'i', cid: 1 }, { instance: 'i', commonName: 'alice', vpnAddress: '10.8.0.2' }));
  table.add(table.create({ via: 'management', instance: 'i', cid: 2 }, { instance: 'i', commonName: 'bob', vpnAddress: '10.8.0.3', vpnAddress6: 'fd00::3' }));
  const plugins = [
    plugin('fw', { kernelState: (s) => ({ sets: { staff: s.flatMap((x) => [x.vpnAddress!, ...(x.vpnAddress6 ? [x.vpnAddress6] : [])]) } }) }),
    plugin('more', { kernelState: () => ({ sets: { staff: ['10.8.0.2'], ops: ['10.8.0.3'] }, routes: [{ network: '10.9.1.0/24', dev: 'tun0' }] }) }),
    plugin('broken', {
      kernelState: () => {
        throw new Error('nope');
      },
    }),
  ];
  services.attach(
    table,
    () => plugins,
    async () => {},
  );
  const want = services.desiredState();
  assert.deepEqual(Object.fromEntries(Object.entries(want.sets).map(([g, a]) => [g, [...a].sort()])), {
    staff: ['10.8.0.2', '10.8.0.3', 'fd00::3'],
    ops: ['10.8.0.3'],
  });
  assert.deepEqual(want.routes, [{ network: '10.9.1.0/24', dev: 'tun0' }]);
  await services.close();
});

test('offline services: a configured root stage and store exist but refuse every call', async () => {
  const s = offlineServices(configSchema.parse({ root: {}, store: { sqlite: '/var/lib/flexscript/f.db' } }));
  assert.ok(s.root && s.records && s.rootRules);
  await assert.rejects(s.root.setAdd('staff', '10.8.0.2'), /not available while checking/);
  await assert.rejects(s.records.recordDenial({ at: 0, instance: 'i', event: 'client-connect', reason: 'x' }), /not available while checking/);
  assert.equal(offlineServices(configSchema.parse({})).root, undefined);
});

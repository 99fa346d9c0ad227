import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../../../events/event-map.ts';
import { createLogger } from '../../../logger.ts';
import type { LiveSession, PluginInstance, RootActions, RouteSpec } from '../../plugin-api.ts';
import routes from './index.ts';

/** The routes plugin with a root stage that only notes what it is asked, and a set of live sessions. */
async function setup(options: unknown) {
  const calls: string[] = [];
  const root: RootActions = {
    setAdd: async () => {},
    setRemove: async () => {},
    routeAdd: async (r: RouteSpec) => {
      calls.push(`add ${r.network} ${r.dev}`);
      return { changed: true };
    },
    routeRemove: async (r: RouteSpec) => {
      calls.push(`remove ${r.network} ${r.dev}`);
      return { changed: true };
    },
    conntrackFlush: async () => ({ deleted: 0 }),
  };
  const live: LiveSession[] = [];
  const plugin: PluginInstance = await routes.setup({
    options: routes.options!(z).parse(options),
    log: createLogger('silent'),
    instance: 'i',
    configDir: '/',
    signal: new AbortController().signal,
    services: {
      root,
      rootRules: async () => ({ file: 'root.yaml', groups: [], allowedRoutes: ['10.200.0.0/16'], vpnInterfaces: ['tun0'] }),
      sessions: { list: () => live },
      kill: async () => {},
    },
  });
  let port = 1;
  const connect = async (commonName: string, groups: string[] = []) => {
    const session: LiveSession = { id: `${commonName}-${port}`, instance: 'i', commonName, realPort: port++, connectedAt: 0, groups };
    const lines: string[] = [];
    const event = { name: 'client-connect', instance: 'i', commonName, env: { dev: 'tun0' }, reauth: false } as unknown as ClientConnectEvent;
    await plugin['client-connect']!(event, { session, config: (l: string) => void lines.push(l) } as never);
    await plugin.decided!(event, { verdict: 'accept', config: lines }, session);
    live.push(session);
    return { session, lines };
  };
  const disconnect = async (session: LiveSession) => {
    const event = { name: 'client-disconnect', instance: 'i', commonName: session.commonName, env: {} } as unknown as ClientDisconnectEvent;
    await plugin['client-disconnect']!(event, { session, state: new Map() } as never);
    live.splice(live.indexOf(session), 1);
  };
  return { plugin, connect, disconnect, live, taken: () => calls.splice(0) };
}

test("routes: a client group's networks are behind each member, matched exactly; the kernel route stays while a member is connected", async () => {
  const r = await setup({ clients: { 'branch-1': ['10.200.1.0/24'] }, groups: { 'Lyon Routers': ['10.200.20.0/24'] } });
  const a = await r.connect('router-a', ['Lyon Routers']);
  assert.deepEqual(a.lines, ['iroute 10.200.20.0 255.255.255.0']);
  assert.deepEqual(r.taken(), ['add 10.200.20.0/24 tun0']);
  const b = await r.connect('router-b', ['Lyon Routers']);
  assert.deepEqual(b.lines, ['iroute 10.200.20.0 255.255.255.0']);
  r.taken();
  // another spelling, or no group: nothing
  assert.deepEqual((await r.connect('x', ['lyon routers'])).lines, []);
  assert.deepEqual((await r.connect('y')).lines, []);
  // a common name and a group together: both, each network once
  const branch = await r.connect('branch-1', ['Lyon Routers']);
  assert.deepEqual(branch.lines, ['iroute 10.200.1.0 255.255.255.0', 'iroute 10.200.20.0 255.255.255.0']);
  r.taken();
  assert.deepEqual(r.plugin.kernelState!(r.live).routes, [
    { network: '10.200.20.0/24', dev: 'tun0' },
    { network: '10.200.1.0/24', dev: 'tun0' },
  ]);
  await r.disconnect(a.session);
  await r.disconnect(branch.session);
  assert.deepEqual(r.taken(), ['remove 10.200.1.0/24 tun0'], 'router-b still holds the group network');
  await r.disconnect(b.session);
  assert.deepEqual(r.taken(), ['remove 10.200.20.0/24 tun0']);
});

test('routes options: a network behind a client and a group is refused with its place; groups must lie in routes.allowed', async () => {
  const issues = routes.options!(z)
    .safeParse({ clients: { a: ['10.200.1.0/24'] }, groups: { g: ['10.200.1.0/24'] } })
    .error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.deepEqual(issues, ['groups.g.0: 10.200.1.0/24 is already behind a']);
  await assert.rejects(setup({ groups: { g: ['192.168.0.0/24'] } }), /192\.168\.0\.0\/24 \(behind group g\) is outside routes\.allowed/);
});

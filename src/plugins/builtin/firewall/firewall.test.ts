import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import type { LearnAddressEvent } from '../../../events/event-map.ts';
import { createLogger } from '../../../logger.ts';
import type { DecisionContext, LiveSession, PluginInstance, RootActions, Services } from '../../plugin-api.ts';
import firewall, { membership } from './index.ts';
import { rootRulesReader } from '../../../daemon/services.ts';

const ROOT_YAML = `table: fxs_unit
vpn-interfaces: [tun0]
vpn-networks: [10.8.0.0/24]
groups:
  staff: { allow: [] }
  ops: { allow: [] }
  guests: { allow: [] }
`;

/** The firewall with a root stage that only notes what it is asked, and a set of live sessions. */
async function setup(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-firewall-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'root.yaml'), ROOT_YAML);
  const calls: string[] = [];
  const root: RootActions = {
    setAdd: async (g, a) => void calls.push(`add ${g} ${a}`),
    setRemove: async (g, a) => void calls.push(`remove ${g} ${a}`),
    routeAdd: async () => ({ changed: false }),
    routeRemove: async () => ({ changed: false }),
    conntrackFlush: async (a) => {
      calls.push(`flush ${a}`);
      return { deleted: 0 };
    },
  };
  const live: LiveSession[] = [];
  let searches = 0;
  const services: Services = {
    root,
    rootRules: rootRulesReader(join(dir, 'root.yaml')),
    sessions: {
      list: () => {
        searches++;
        return live;
      },
    },
    kill: async () => {},
  };
  const options = firewall.options!(z).parse({
    groups: {
      staff: { 'common-names': ['alice'], usernames: ['carol'], groups: ['vpn-admins', 'Domain Admins'] },
      ops: { patterns: ['*.ops'] },
      guests: {},
    },
    'default-group': 'guests',
  });
  const plugin: PluginInstance = await firewall.setup({
    options,
    services,
    log: createLogger('silent'),
    instance: 'i',
    configDir: dir,
    signal: new AbortController().signal,
  });
  const learn = async (operation: LearnAddressEvent['operation'], address: string, session: LiveSession | undefined, commonName?: string) => {
    const event = { name: 'learn-address', instance: 'i', operation, address, commonName } as LearnAddressEvent;
    const denied: string[] = [];
    const ctx = { session, state: undefined, deny: (r: string) => void denied.push(r) } as unknown as DecisionContext;
    await plugin['learn-address']!(event, ctx);
    return denied;
  };
  const taken = () => calls.splice(0).sort();
  return { plugin, live, learn, taken, searches: () => searches };
}

const session = (commonName: string, vpnAddress: string, username?: string): LiveSession => ({
  id: commonName,
  instance: 'i',
  commonName,
  username,
  vpnAddress,
  groups: [],
  connectedAt: 0,
});

test('learn-address: the session the daemon hands over decides the groups; nothing is searched', async (t) => {
  const f = await setup(t);
  const carol = session('laptop', '10.8.0.2', 'carol');
  f.live.push(carol);
  // OpenVPN names the certificate; the session knows the username too
  await f.learn('add', '10.8.0.2', carol, 'laptop');
  assert.deepEqual(f.taken(), ['add staff 10.8.0.2']);
  // a client the daemon does not know: the name OpenVPN gives decides
  await f.learn('add', '10.8.0.3/32', undefined, 'bob.ops');
  assert.deepEqual(f.taken(), ['add ops 10.8.0.3']);
  assert.equal(f.searches(), 0);
});

test("learn-address and kernelState: a client's groups put it in the firewall groups whose members list them, compared exactly", async (t) => {
  const f = await setup(t);
  const admin = { ...session('laptop-1', '10.8.0.4'), groups: ['vpn-admins'] };
  const directory = { ...session('laptop-2', '10.8.0.5'), groups: ['Domain Admins'] };
  const near = { ...session('laptop-3', '10.8.0.6'), groups: ['VPN-Admins', 'domain admins', 'vpn-admins ', 'Domain Admins; x'] };
  await f.learn('add', '10.8.0.4', admin, 'laptop-1');
  await f.learn('add', '10.8.0.5', directory, 'laptop-2');
  await f.learn('add', '10.8.0.6', near, 'laptop-3');
  assert.deepEqual(f.taken(), ['add guests 10.8.0.6', 'add staff 10.8.0.4', 'add staff 10.8.0.5']);
  assert.deepEqual(f.plugin.kernelState!([admin, directory, near]), { sets: { staff: ['10.8.0.4', '10.8.0.5'], guests: ['10.8.0.6'] } });
});

test('membership: names, patterns and client groups, each alone, and a hostile group name is data', () => {
  const groupsOf = membership(
    firewall.options!(z).parse({ groups: { admins: { groups: ['vpn-admins'] }, ops: { patterns: ['ops-*'] } }, 'default-group': 'ops' }),
  );
  assert.deepEqual(groupsOf({ commonName: 'x', groups: ['vpn-admins'] }), ['admins']);
  assert.deepEqual(groupsOf({ commonName: 'ops-1', groups: ['vpn-admins'] }), ['admins', 'ops']);
  assert.deepEqual(groupsOf({ commonName: 'x', groups: [`vpn-admins$(reboot)${'x'.repeat(300)}`] }), ['ops'], 'the default group');
  // a pattern matches names, never group names
  assert.deepEqual(membership(firewall.options!(z).parse({ groups: { ops: { patterns: ['vpn-*'] } } }))({ commonName: 'x', groups: ['vpn-admins'] }), []);
});

test('an address that moved to another client leaves the sets of the other groups; a delete spares a held address', async (t) => {
  const f = await setup(t);
  await f.learn('add', '10.8.0.2', session('alice', '10.8.0.2'), 'alice');
  f.taken();
  await f.learn('update', '10.8.0.2', session('bob.ops', '10.8.0.2'), 'bob.ops');
  assert.deepEqual(f.taken(), ['add ops 10.8.0.2', 'remove guests 10.8.0.2', 'remove staff 10.8.0.2']);
  // a reaped route whose address a live client holds again stays
  await f.learn('delete', '10.8.0.2', session('bob.ops', '10.8.0.2'));
  assert.deepEqual(f.taken(), []);
  // nobody holds it: it leaves every set and its flows are flushed
  await f.learn('delete', '10.8.0.2', undefined);
  assert.deepEqual(f.taken(), ['flush 10.8.0.2', 'remove guests 10.8.0.2', 'remove ops 10.8.0.2', 'remove staff 10.8.0.2']);
  // networks (iroute) and MAC addresses are not the firewall's
  await f.learn('add', '10.9.0.0/16', undefined, 'alice');
  assert.deepEqual(f.taken(), []);
});

test('kernelState is a pure query of the live sessions: asking changes nothing the plugin does next', async (t) => {
  const f = await setup(t);
  const alice = { ...session('alice', '10.8.0.2'), vpnAddress6: 'fd00::2' };
  const bob = session('bob.ops', '10.8.0.3');
  assert.deepEqual(f.plugin.kernelState!([alice, bob]), { sets: { staff: ['10.8.0.2', 'fd00::2'], ops: ['10.8.0.3'] } });
  assert.deepEqual(f.taken(), []);
  // the query left nothing behind: with no live client, down has nothing to remove
  await f.plugin.down!({ name: 'down', instance: 'i' } as never, { state: undefined } as never);
  assert.deepEqual(f.taken(), []);
  // OpenVPN went down: the addresses of its live clients leave the sets
  f.live.push(alice, bob, { ...session('x', '10.7.0.9'), instance: 'other' });
  await f.plugin.down!({ name: 'down', instance: 'i' } as never, { state: undefined } as never);
  assert.deepEqual(f.taken(), [
    'remove guests 10.8.0.2',
    'remove guests 10.8.0.3',
    'remove guests fd00::2',
    'remove ops 10.8.0.2',
    'remove ops 10.8.0.3',
    'remove ops fd00::2',
    'remove staff 10.8.0.2',
    'remove staff 10.8.0.3',
    'remove staff fd00::2',
  ]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionKey } from '../core/client.ts';
import type { ClientConnectEvent, ClientDisconnectEvent, EventSource } from '../events/event-map.ts';
import type { RawEvent } from '../events/parse-event.ts';
import { createLogger } from '../logger.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { PluginInstance } from '../plugins/plugin-api.ts';
import type { GroupRules } from '../sessions/group-rules.ts';
import { Dispatcher } from './dispatcher.ts';

const log = createLogger('silent');
const plugin = (name: string, instance: PluginInstance): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs: 1000, instance });

/** Directory group names are free text: spaces, capitals, punctuation, long. */
const HOSTILE_GROUP = `Domain Admins; $(touch /tmp/x) "q" ${'g'.repeat(200)}`;
const RULES: GroupRules = {
  'static-ops': { 'common-names': [], usernames: [], patterns: ['ops-*'] },
  'by-user': { 'common-names': [], usernames: ['alice'], patterns: [] },
  'by-name': { 'common-names': ['laptop'], usernames: [], patterns: [] },
};

/**
 * Both sources' shapes of one connection: hook mode keys a connection by its real address and
 * port (untrusted_* at user-pass-verify, trusted_* at client-connect), management mode by
 * OpenVPN's client id, with untrusted_* in both events.
 */
const SHAPES: readonly { source: EventSource; keyOf: (e: ClientConnectEvent | ClientDisconnectEvent) => ConnectionKey; at: 'trusted' | 'untrusted' }[] = [
  {
    source: 'hook',
    keyOf: (e) => ({ via: 'hook', instance: e.instance, realAddress: e.realAddress, realPort: e.realPort, commonName: e.commonName }),
    at: 'trusted',
  },
  { source: 'management', keyOf: (e) => ({ via: 'management', instance: e.instance, cid: e.realPort ?? 0 }), at: 'untrusted' },
];

for (const shape of SHAPES) {
  const auth = (commonName: string, username: string, port: number): RawEvent => ({
    name: 'user-pass-verify',
    instance: 'i',
    source: shape.source,
    env: { common_name: commonName, username, password: 'pw', untrusted_ip: '198.51.100.7', untrusted_port: String(port) },
  });
  const connect = (commonName: string, username: string | undefined, port: number, extra: Partial<RawEvent> = {}): RawEvent => ({
    name: 'client-connect',
    instance: 'i',
    source: shape.source,
    env: {
      common_name: commonName,
      ...(username === undefined ? {} : { username }),
      [`${shape.at}_ip`]: '198.51.100.7',
      [`${shape.at}_port`]: String(port),
      ifconfig_pool_remote_ip: `10.8.0.${100 + port}`,
    },
    ...extra,
  });

  /**
   * A verifier giving alice and carol their directory groups (`decides`: it calls addGroups even
   * with none, as the built-ins do), a watcher claiming one, plugins adding and reading groups at connect.
   */
  function groupsLab(directory: Record<string, string[]>, decides = false) {
    const seen: { plugin: string; commonName: string; groups: readonly string[] }[] = [];
    const connects = { refuse: false };
    const plugins = [
      plugin('watcher', {
        // does not verify usernames: what it claims counts for nothing
        'user-pass-verify': (_e, ctx) => ctx.addGroups('claimed-by-watcher'),
      }),
      plugin('verifier', {
        verifiesUsernames: true,
        'user-pass-verify': (e, ctx) => {
          const groups = directory[e.username];
          if (!groups) return ctx.deny('unknown user');
          if (groups.length > 0 || decides) ctx.addGroups(...groups);
        },
      }),
      plugin('first', {
        'client-connect': (e, ctx) => {
          seen.push({ plugin: 'first', commonName: e.commonName, groups: ctx.session?.groups ?? [] });
          if (e.commonName === 'tagged') ctx.addGroups('added-at-connect');
        },
      }),
      plugin('second', {
        'client-connect': (e, ctx) => {
          seen.push({ plugin: 'second', commonName: e.commonName, groups: ctx.session?.groups ?? [] });
          if (connects.refuse) ctx.deny('refused');
        },
      }),
    ];
    const d = new Dispatcher(new Pipeline(plugins, log), log, 4, { groups: RULES });
    const sessionAt = (port: number) => d.sessions.list().find((s) => s.realPort === port);
    return { d, seen, sessionAt, keyOf: shape.keyOf, connects };
  }

  test(`${shape.source} keys: groups from the verifying plugin reach the client-connect of that connection, with the rules' and earlier plugins'`, async () => {
    const { d, seen, sessionAt, keyOf } = groupsLab({ alice: ['vpn-admins', HOSTILE_GROUP], carol: [] });
    const accepted = await d.handle({ raw: auth('laptop', 'alice', 1), keyOf });
    assert.equal(accepted.verdict, 'accept');
    assert.deepEqual(accepted.groups, ['vpn-admins', HOSTILE_GROUP], "a non-verifying plugin's groups are not in the decision");
    assert.equal((await d.handle({ raw: connect('laptop', 'alice', 1), keyOf })).verdict, 'accept');
    // carried groups, then the rules': the verified username and the common name
    const want = ['vpn-admins', HOSTILE_GROUP, 'by-user', 'by-name'];
    assert.deepEqual(seen.at(-2), { plugin: 'first', commonName: 'laptop', groups: want });
    assert.deepEqual(sessionAt(1)?.groups, want);
    assert.ok(!sessionAt(1)?.groups.includes('claimed-by-watcher'), 'a group a plugin that verifies nothing claimed does not count');

    // a group added at connect is seen by the plugins after the one that added it, and is final
    await d.handle({ raw: auth('tagged', 'carol', 2), keyOf });
    const tagged = await d.handle({ raw: connect('tagged', 'carol', 2), keyOf });
    assert.deepEqual(tagged.groups, ['added-at-connect']);
    assert.deepEqual(seen.at(-2), { plugin: 'first', commonName: 'tagged', groups: [] });
    assert.deepEqual(seen.at(-1), { plugin: 'second', commonName: 'tagged', groups: ['added-at-connect'] });
    assert.deepEqual(sessionAt(2)?.groups, ['added-at-connect']);
  });

  test(`${shape.source} keys: carried groups are taken once, need the verified username, and a claim is no member of anything`, async () => {
    const { d, sessionAt, keyOf } = groupsLab({ alice: ['vpn-admins'] });
    // verified on port 3, but this connect claims another name: neither the username nor its groups
    await d.handle({ raw: auth('laptop', 'alice', 3), keyOf });
    await d.handle({ raw: connect('ops-1', 'mallory', 3), keyOf });
    assert.deepEqual(sessionAt(3)?.groups, ['static-ops']);
    // a claimed username alice, never verified: the usernames rule does not see it
    await d.handle({ raw: connect('guest', 'alice', 4), keyOf });
    assert.equal(sessionAt(4)?.username, undefined);
    assert.deepEqual(sessionAt(4)?.groups, []);
    // a refused user-pass-verify carries nothing
    assert.equal((await d.handle({ raw: auth('guest', 'mallory', 5), keyOf })).verdict, 'deny');
    await d.handle({ raw: connect('guest', 'mallory', 5), keyOf });
    assert.deepEqual(sessionAt(5)?.groups, []);
  });

  test(`${shape.source} keys: a re-authenticated live client keeps its groups unless the new authentication brings some`, async () => {
    const directory: Record<string, string[]> = { alice: ['vpn-admins'] };
    const { d, sessionAt, keyOf, connects } = groupsLab(directory);
    // the daemon hears each change, to move the client's firewall sets and its record
    const changes: { now: readonly string[]; before: readonly string[] }[] = [];
    d.groupsChanged = (session, before) => void changes.push({ now: session.groups, before });
    await d.handle({ raw: auth('laptop', 'alice', 6), keyOf });
    await d.handle({ raw: connect('laptop', 'alice', 6), keyOf });
    const live = sessionAt(6);
    assert.deepEqual(live?.groups, ['vpn-admins', 'by-user', 'by-name']);
    // the directory lost her groups: the re-auth brings none, and she keeps hers
    directory.alice = [];
    await d.handle({ raw: auth('laptop', 'alice', 6), keyOf });
    await d.handle({ raw: connect('laptop', 'alice', 6, { reauth: true }), keyOf });
    assert.equal(sessionAt(6), live);
    assert.deepEqual(live?.groups, ['vpn-admins', 'by-user', 'by-name']);
    // a re-auth bringing groups replaces those an authentication gave
    directory.alice = ['auditors'];
    await d.handle({ raw: auth('laptop', 'alice', 6), keyOf });
    if (shape.source === 'management') await d.handle({ raw: connect('laptop', 'alice', 6, { reauth: true }), keyOf });
    // hook mode: a renegotiation runs user-pass-verify only; the live session takes them there
    assert.deepEqual(sessionAt(6)?.groups, ['auditors', 'by-user', 'by-name']);
    assert.deepEqual(
      changes,
      [{ now: ['auditors', 'by-user', 'by-name'], before: ['vpn-admins', 'by-user', 'by-name'] }],
      'one change, and none for the first connect or an unchanged re-auth',
    );
    if (shape.source === 'management') {
      // a re-authentication refused at connect changes nothing of the live session
      directory.alice = ['intruders'];
      connects.refuse = true;
      await d.handle({ raw: auth('laptop', 'alice', 6), keyOf });
      assert.equal((await d.handle({ raw: connect('laptop', 'alice', 6, { reauth: true }), keyOf })).verdict, 'deny');
      assert.deepEqual(live?.groups, ['auditors', 'by-user', 'by-name']);
      assert.equal(changes.length, 1, 'a refused re-authentication changes nothing');
    }
  });

  test(`${shape.source} keys: a re-authentication that decides no groups (removed from every group) takes those of the earlier one, not the rules' or a connect plugin's`, async () => {
    const directory: Record<string, string[]> = { alice: ['vpn-admins', 'auditors'] };
    const { d, sessionAt, keyOf } = groupsLab(directory, true);
    const changes: { now: readonly string[]; before: readonly string[] }[] = [];
    d.groupsChanged = (session, before) => void changes.push({ now: session.groups, before });
    // 'tagged' gets a group from a connect plugin; alice one from the usernames rule
    await d.handle({ raw: auth('tagged', 'alice', 8), keyOf });
    await d.handle({ raw: connect('tagged', 'alice', 8), keyOf });
    assert.deepEqual(sessionAt(8)?.groups, ['vpn-admins', 'auditors', 'by-user', 'added-at-connect']);
    // the directory now names one group only: the other goes
    directory.alice = ['auditors'];
    await d.handle({ raw: auth('tagged', 'alice', 8), keyOf });
    if (shape.source === 'management') await d.handle({ raw: connect('tagged', 'alice', 8, { reauth: true }), keyOf });
    assert.deepEqual(sessionAt(8)?.groups, ['auditors', 'by-user', 'added-at-connect']);
    // removed from every group: the authentication's are gone, the rule's and the connect plugin's stay
    directory.alice = [];
    const reauth = await d.handle({ raw: auth('tagged', 'alice', 8), keyOf });
    assert.deepEqual(reauth.groups, [], 'the decision says the groups were decided, as none');
    if (shape.source === 'management') await d.handle({ raw: connect('tagged', 'alice', 8, { reauth: true }), keyOf });
    assert.deepEqual(sessionAt(8)?.groups, ['by-user', 'added-at-connect']);
    assert.deepEqual(
      changes.map((c) => c.now),
      [
        ['auditors', 'by-user', 'added-at-connect'],
        ['by-user', 'added-at-connect'],
      ],
    );
  });

  test(`${shape.source} keys: a username a verifying plugin names (a provider's claim) is the client's identity at connect, whatever it sent; another plugin's is ignored`, async () => {
    const plugins = [
      plugin('web', {
        verifiesUsernames: true,
        'user-pass-verify': (e, ctx) => {
          if (e.commonName === 'refused') return ctx.deny('no login');
          ctx.setUsername('alice');
          ctx.addGroups('vpn-users');
        },
      }),
      // after the verifier, and verifying nothing: its name would win if it counted
      plugin('watcher', { 'user-pass-verify': (_e, ctx) => ctx.setUsername('mallory') }),
    ];
    const d = new Dispatcher(new Pipeline(plugins, log), log, 4, { groups: RULES });
    const accepted = await d.handle({ raw: auth('laptop', '', 21), keyOf: shape.keyOf });
    assert.equal(accepted.username, 'alice');
    const connected = await d.handle({ raw: connect('laptop', undefined, 21), keyOf: shape.keyOf });
    assert.equal(connected.verdict, 'accept');
    const session = d.sessions.list().find((s) => s.realPort === 21);
    assert.equal(session?.username, 'alice', 'the named user, though the client sent no username');
    assert.deepEqual(session?.groups, ['vpn-users', 'by-user', 'by-name']);
    // the client sent a throwaway username: the named one still counts
    await d.handle({ raw: auth('laptop', 'sso', 22), keyOf: shape.keyOf });
    await d.handle({ raw: connect('laptop', 'sso', 22), keyOf: shape.keyOf });
    assert.equal(d.sessions.list().find((s) => s.realPort === 22)?.username, 'alice');
    // a refused login names nobody
    await d.handle({ raw: auth('refused', '', 23), keyOf: shape.keyOf });
    await d.handle({ raw: connect('refused', undefined, 23), keyOf: shape.keyOf });
    assert.equal(d.sessions.list().find((s) => s.realPort === 23)?.username, undefined);
  });
}

test("sessions rebuilt from OpenVPN's list, and a disconnect of a session the daemon never saw, get the rules' groups", async () => {
  const left: (readonly string[])[] = [];
  const d = new Dispatcher(new Pipeline([plugin('p', { 'client-disconnect': (_e, ctx) => void left.push(ctx.session?.groups ?? []) })], log), log, 4, {
    groups: RULES,
  });
  await d.rebuild('i', [
    {
      key: { via: 'management', instance: 'i', cid: 7 },
      instance: 'i',
      commonName: 'ops-7',
      realAddress: '198.51.100.7',
      realPort: 7,
      vpnAddress: '10.8.0.7',
      connectedAt: 1,
      bytesReceived: 0,
      bytesSent: 0,
    },
  ]);
  assert.deepEqual(d.sessions.list()[0]?.groups, ['static-ops']);
  await d.handle({
    raw: { name: 'client-disconnect', instance: 'i', source: 'hook', env: { common_name: 'laptop', trusted_ip: '198.51.100.8', trusted_port: '9' } },
    keyOf: (e) => ({ via: 'hook', instance: e.instance, realAddress: e.realAddress, realPort: e.realPort, commonName: e.commonName }),
  });
  assert.deepEqual(left, [['by-name']]);
  // a reload changes the rules
  d.identity = {};
  await d.handle({
    raw: { name: 'client-connect', instance: 'i', source: 'hook', env: { common_name: 'ops-2', trusted_ip: '198.51.100.9', trusted_port: '2' } },
    keyOf: (e) => ({ via: 'hook', instance: e.instance, realAddress: e.realAddress, realPort: e.realPort, commonName: e.commonName }),
  });
  assert.deepEqual(d.sessions.list().find((s) => s.commonName === 'ops-2')?.groups, []);
});

test("sessions rebuilt after a daemon restart take back the verified username and the groups of their own open record, never the rules' names", async () => {
  const d = new Dispatcher(new Pipeline([], log), log, 4, { groups: RULES });
  assert.equal(d.sessions.restoredUsernamesVerified, false, 'no plugin verifies usernames: listed usernames alone are not identity');
  const listed = (cid: number, commonName: string, username: string | undefined) => ({
    key: { via: 'management' as const, instance: 'i', cid },
    instance: 'i',
    commonName,
    username,
    realAddress: '198.51.100.7',
    realPort: cid,
    vpnAddress: `10.8.0.${cid}`,
    connectedAt: 1,
    bytesReceived: 0,
    bytesSent: 0,
  });
  const asked: string[] = [];
  d.recall = async (instance) => {
    asked.push(instance);
    return [
      // an older record of the same connection, superseded: the newest one counts
      { id: 'rec-laptop-old', commonName: 'laptop', username: 'alice', realAddress: '198.51.100.7', realPort: 1, startedAt: 5, groups: ['stale'] },
      {
        id: 'rec-laptop',
        commonName: 'laptop',
        username: 'alice',
        realAddress: '198.51.100.7',
        realPort: 1,
        startedAt: 10,
        groups: ['Domain Admins', 'static-ops', HOSTILE_GROUP],
      },
      { id: 'rec-phone', commonName: 'phone', username: 'bob', realAddress: '198.51.100.7', realPort: 2, startedAt: 10, groups: ['finance'] },
      { id: 'rec-tablet', commonName: 'tablet', realAddress: '198.51.100.7', realPort: 3, startedAt: 10, groups: ['from-connect-plugin'] },
      // a web login: the client sent no username, the verifying plugin named the user
      { id: 'rec-kiosk', commonName: 'kiosk', username: 'dora', realAddress: '198.51.100.7', realPort: 5, startedAt: 10, groups: ['sso-staff'] },
    ];
  };
  await d.rebuild('i', [
    listed(1, 'laptop', 'alice'),
    listed(2, 'phone', 'mallory'),
    listed(3, 'tablet', undefined),
    listed(4, 'ops-4', 'carol'),
    listed(5, 'kiosk', undefined),
  ]);
  assert.deepEqual(asked, ['i']);
  const byName = (cn: string) => d.sessions.list().find((s) => s.commonName === cn);
  // the record vouches for alice; 'static-ops' is a rule's name, decided by the rules now (laptop matches by-name, alice by-user)
  assert.equal(byName('laptop')?.username, 'alice');
  assert.deepEqual(byName('laptop')?.groups, ['Domain Admins', HOSTILE_GROUP, 'by-user', 'by-name']);
  // the client now says mallory, the record says bob: neither the name nor the record's groups
  assert.equal(byName('phone')?.username, undefined);
  assert.deepEqual(byName('phone')?.groups, []);
  // no username on either side: the groups its connect plugins gave come back
  assert.deepEqual(byName('tablet')?.groups, ['from-connect-plugin']);
  assert.equal(byName('kiosk')?.username, 'dora', 'the name a verifying plugin gave where the client sent none');
  assert.deepEqual(byName('kiosk')?.groups, ['sso-staff']);
  // each session is its record's: a kill or a plugin marking it reaches that record
  assert.deepEqual(
    ['laptop', 'phone', 'tablet', 'kiosk'].map((cn) => byName(cn)?.id),
    ['rec-laptop', 'rec-phone', 'rec-tablet', 'rec-kiosk'],
  );
  // no record: the rules alone, and an unverified username is dropped
  assert.equal(byName('ops-4')?.username, undefined);
  assert.match(byName('ops-4')?.id ?? '', /^[0-9a-f-]{36}$/, 'a session of its own');
  assert.deepEqual(byName('ops-4')?.groups, ['static-ops']);

  // a store that cannot answer: rebuilt all the same, with the rules' groups
  const failing = new Dispatcher(new Pipeline([], log), log, 4, { groups: RULES });
  failing.recall = () => Promise.reject(new Error('store down'));
  assert.deepEqual(await failing.rebuild('i', [listed(1, 'laptop', 'alice')]), { rebuilt: 1, closedAsMissed: 0 });
  assert.deepEqual(failing.sessions.list()[0]?.groups, ['by-name']);
  assert.equal(failing.sessions.list()[0]?.username, undefined);
});

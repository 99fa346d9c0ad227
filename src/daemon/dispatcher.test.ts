import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionKey, ListedClient } from '../core/client.ts';
import type { ClientConnectEvent, ClientDisconnectEvent, LearnAddressEvent } from '../events/event-map.ts';
import type { RawEvent } from '../events/parse-event.ts';
import { createLogger } from '../logger.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { LiveSession, PluginInstance } from '../plugins/plugin-api.ts';
import { Dispatcher } from './dispatcher.ts';

const log = createLogger('silent');
const plugin = (name: string, instance: PluginInstance): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs: 1000, instance });
/** Connections named by instance, real address and port only (the common name may change between events). */
const key = (instance: string, realAddress: string | undefined, realPort: number | undefined): ConnectionKey => ({
  via: 'hook',
  instance,
  realAddress,
  realPort,
  commonName: '',
});
const keyOf = (e: ClientConnectEvent | ClientDisconnectEvent) => key(e.instance, e.realAddress, e.realPort);

const connect = (commonName: string, port: number, extra: Partial<RawEvent> = {}): RawEvent => ({
  name: 'client-connect',
  instance: 'i',
  source: 'hook',
  env: {
    common_name: commonName,
    trusted_ip: '198.51.100.7',
    trusted_port: String(port),
    ifconfig_pool_remote_ip: `10.8.0.${100 + (port % 100)}`,
    ifconfig_pool_remote_ip6: `fd00::${100 + (port % 100)}`,
  },
  ...extra,
});
const learn = (address: string, commonName = ''): RawEvent => ({
  name: 'learn-address',
  instance: 'i',
  source: 'hook',
  env: {},
  args: ['add', address, commonName],
});

test('a client given a static address in the answer is recorded and found by that address, not its pool address', async () => {
  const decided: LiveSession[] = [];
  const learned: { known: boolean }[] = [];
  const pipeline = new Pipeline(
    [
      plugin('static', {
        'client-connect': (e, ctx) => {
          if (e.commonName === 'alice') {
            ctx.config('ifconfig-push 10.8.0.10 255.255.255.0');
            ctx.config('ifconfig-ipv6-push fd00::10/64');
          }
          ctx.state.set('connected', true);
        },
        'learn-address': (_e, ctx) => void learned.push({ known: ctx.state?.get('connected') === true }),
        // what accounting records here must already be the address the client gets
        decided: (_e, outcome, session) => void (outcome.verdict === 'accept' && session && decided.push({ ...session })),
      }),
    ],
    log,
  );
  const d = new Dispatcher(pipeline, log, 4);

  assert.equal((await d.handle({ raw: connect('alice', 1), keyOf })).verdict, 'accept');
  assert.equal((await d.handle({ raw: connect('bob', 2), keyOf })).verdict, 'accept');
  assert.equal(decided[0]?.vpnAddress, '10.8.0.10');
  assert.equal(decided[0]?.vpnAddress6, 'fd00::10');
  assert.equal(decided[1]?.vpnAddress, '10.8.0.102', 'no ifconfig-push: the pool address');

  const alice = d.sessions.byAddress('i', '10.8.0.10');
  assert.equal(alice?.commonName, 'alice');
  assert.equal(d.sessions.byAddress('i', 'fd00::10'), alice);
  assert.equal(d.sessions.byAddress('i', '10.8.0.101'), undefined, 'the pool address is not hers');

  // OpenVPN learns the static address: the plugins get the session that holds it
  await d.handle({ raw: learn('10.8.0.10', 'alice'), keyOf });
  await d.handle({ raw: learn('fd00::10/128', 'alice'), keyOf });
  await d.handle({ raw: learn('10.8.0.101', 'alice'), keyOf });
  assert.deepEqual(learned, [{ known: true }, { known: true }, { known: false }]);
});

test('a reauth keeps the live session and its address; a disconnect takes the session out of the address index', async () => {
  let push = 'ifconfig-push 10.8.0.10 255.255.255.0';
  const pipeline = new Pipeline([plugin('static', { 'client-connect': (_e, ctx) => ctx.config(push) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  await d.handle({ raw: connect('alice', 1), keyOf });
  const first = d.sessions.byAddress('i', '10.8.0.10');
  assert.ok(first);
  // OpenVPN does not move a connected client: the session keeps the address it has
  push = 'ifconfig-push 10.8.0.20 255.255.255.0';
  await d.handle({ raw: connect('alice', 1, { reauth: true }), keyOf });
  assert.equal(d.sessions.byAddress('i', '10.8.0.10'), first);
  assert.equal(d.sessions.byAddress('i', '10.8.0.20'), undefined);
  assert.equal(d.sessions.size, 1);

  await d.handle({
    raw: {
      name: 'client-disconnect',
      instance: 'i',
      source: 'hook',
      env: { common_name: 'alice', trusted_ip: '198.51.100.7', trusted_port: '1', ifconfig_pool_remote_ip: '10.8.0.10' },
    },
    keyOf,
  });
  assert.equal(d.sessions.byAddress('i', '10.8.0.10'), undefined);
  assert.equal(d.sessions.size, 0);
});

test('a connect refused after the answer was built registers no session under the answer address', async () => {
  const pipeline = new Pipeline(
    [
      plugin('static', { 'client-connect': (_e, ctx) => ctx.config('ifconfig-push 10.8.0.10 255.255.255.0') }),
      plugin('store', {
        decided: (_e, outcome) => {
          if (outcome.verdict === 'accept') throw new Error('store down');
        },
      }),
    ],
    log,
  );
  const d = new Dispatcher(pipeline, log, 4);
  assert.equal((await d.handle({ raw: connect('alice', 1), keyOf })).verdict, 'deny');
  assert.equal(d.sessions.byAddress('i', '10.8.0.10'), undefined);
  assert.equal(d.sessions.size, 0);
});

/** A user-pass-verify as hook mode sees it: before the handshake ends, the address is untrusted_*. */
const auth = (commonName: string, username: string, port: number): RawEvent => ({
  name: 'user-pass-verify',
  instance: 'i',
  source: 'hook',
  env: { common_name: commonName, username, password: 'pw', untrusted_ip: '198.51.100.7', untrusted_port: String(port) },
});
const claiming = (commonName: string, username: string, port: number) => {
  const raw = connect(commonName, port);
  return { ...raw, env: { ...raw.env, username } };
};

/** A dispatcher whose verifier accepts `alice` and `carol` (and a plugin that only watches). */
function identityLab(o: { verifier?: boolean; openvpn?: boolean } = {}) {
  const seen: { username?: string; claimed?: string; session?: string }[] = [];
  const plugins = [
    plugin('watcher', {
      'user-pass-verify': () => {},
      'client-connect': (e, ctx) => void seen.push({ username: e.username, claimed: e.env.username, session: ctx.session?.username }),
    }),
    ...(o.verifier === false
      ? []
      : [
          plugin('verifier', {
            verifiesUsernames: true,
            'user-pass-verify': (e, ctx) => (['alice', 'carol'].includes(e.username) ? undefined : ctx.deny('unknown user')),
          }),
        ]),
  ];
  const d = new Dispatcher(new Pipeline(plugins, log), log, 4, { usernamesVerifiedByOpenvpn: o.openvpn });
  return { d, seen, last: () => seen.at(-1) };
}

test('a username the client sent is identity only after a plugin that verifies usernames accepted it for that very client', async () => {
  const { d, last } = identityLab();
  // no user-pass-verify at all: the claim stays in env
  await d.handle({ raw: claiming('guest-17', 'carol', 1), keyOf });
  assert.deepEqual(last(), { username: undefined, claimed: 'carol', session: undefined });
  // verified for this address and port: identity
  assert.equal((await d.handle({ raw: auth('laptop', 'alice', 2), keyOf })).verdict, 'accept');
  await d.handle({ raw: claiming('laptop', 'alice', 2), keyOf });
  assert.deepEqual(last(), { username: 'alice', claimed: 'alice', session: 'alice' });
  assert.equal(d.sessions.get(key('i', '198.51.100.7', 2))?.username, 'alice');
  // alice verified on port 3; a client on port 4 claiming alice, and port 3 claiming carol, are not her
  await d.handle({ raw: auth('laptop', 'alice', 3), keyOf });
  await d.handle({ raw: claiming('guest-17', 'alice', 4), keyOf });
  assert.equal(last()?.username, undefined);
  await d.handle({ raw: claiming('laptop', 'carol', 3), keyOf });
  assert.equal(last()?.username, undefined);
  // taken once: the next connect from port 3 is not verified by the earlier auth
  await d.handle({ raw: claiming('laptop', 'alice', 3), keyOf });
  assert.equal(last()?.username, undefined);
  // refused at user-pass-verify: nothing verified
  assert.equal((await d.handle({ raw: auth('guest-17', 'mallory', 5), keyOf })).verdict, 'deny');
  await d.handle({ raw: claiming('guest-17', 'mallory', 5), keyOf });
  assert.equal(last()?.username, undefined);
  // a deny after an accept on the same address and port forgets the accept
  await d.handle({ raw: auth('x', 'alice', 6), keyOf });
  await d.handle({ raw: auth('x', 'mallory', 6), keyOf });
  await d.handle({ raw: claiming('x', 'alice', 6), keyOf });
  assert.equal(last()?.username, undefined);
});

test('a plugin that only watches user-pass-verify verifies nothing; OpenVPN does where the config says so', async () => {
  const watched = identityLab({ verifier: false });
  assert.equal((await watched.d.handle({ raw: auth('guest-17', 'carol', 1), keyOf })).verdict, 'accept');
  await watched.d.handle({ raw: claiming('guest-17', 'carol', 1), keyOf });
  assert.deepEqual(watched.last(), { username: undefined, claimed: 'carol', session: undefined });
  assert.equal(watched.d.sessions.restoredUsernamesVerified, false, 'usernames of rebuilt sessions are not trusted either');

  const openvpn = identityLab({ verifier: false, openvpn: true });
  await openvpn.d.handle({ raw: claiming('laptop', 'carol', 1), keyOf });
  assert.deepEqual(openvpn.last(), { username: 'carol', claimed: 'carol', session: 'carol' });
  assert.equal(openvpn.d.sessions.restoredUsernamesVerified, true);
  // a reload can change it
  openvpn.d.identity = {};
  assert.equal(openvpn.d.sessions.restoredUsernamesVerified, false);
  await openvpn.d.handle({ raw: claiming('laptop', 'carol', 2), keyOf });
  assert.equal(openvpn.last()?.username, undefined);
});

test('usernames of sessions the daemon did not see begin: kept only where every connect had its username verified', async () => {
  const unverified = identityLab({ verifier: false });
  const left: (string | undefined)[] = [];
  const pipeline = (verifies: boolean) =>
    new Pipeline(
      [plugin('p', { ...(verifies ? { verifiesUsernames: true, 'user-pass-verify': () => {} } : {}), 'client-disconnect': (e) => void left.push(e.username) })],
      log,
    );
  // rebuilt from OpenVPN's list of clients
  const rebuilt = unverified.d.sessions.create(key('i', undefined, undefined), { instance: 'i', commonName: 'guest-17', username: 'alice' });
  assert.equal(rebuilt.username, undefined);
  // a disconnect of a client the daemon never saw connect
  const gone: RawEvent = {
    name: 'client-disconnect',
    instance: 'i',
    source: 'hook',
    env: { common_name: 'guest-17', username: 'alice', trusted_ip: '198.51.100.7', trusted_port: '9' },
  };
  await unverified.d.swap(pipeline(false));
  await unverified.d.handle({ raw: gone, keyOf });
  await unverified.d.swap(pipeline(true));
  assert.equal(unverified.d.sessions.restoredUsernamesVerified, true, 'a verifying plugin now guards every connect');
  assert.equal(unverified.d.sessions.create(key('i', undefined, undefined), { instance: 'i', commonName: 'laptop', username: 'alice' }).username, 'alice');
  await unverified.d.handle({ raw: gone, keyOf });
  assert.deepEqual(left, [undefined, 'alice']);
});

/** A client as OpenVPN lists it (status 3), served through the management interface. */
const listed = (cid: number, commonName: string, vpnAddress?: string, username?: string): ListedClient => ({
  instance: 'i',
  key: { via: 'management', instance: 'i', cid },
  commonName,
  username,
  realAddress: '198.51.100.7',
  realPort: 40000 + cid,
  vpnAddress,
  vpnAddress6: vpnAddress && `fd00::${cid}`,
  connectedAt: 1795893109_000,
  bytesReceived: 0,
  bytesSent: 0,
});

test('rebuild: listed clients with an address become sessions, once; usernames follow the identity rules', async () => {
  const seen: string[] = [];
  const pipeline = new Pipeline([plugin('p', { 'client-disconnect': (e) => void seen.push(e.commonName) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  const first = await d.rebuild('i', [listed(1, 'alice', '10.8.0.2', 'alice-user'), listed(2, 'waiting')]);
  assert.deepEqual(first, { rebuilt: 1, closedAsMissed: 0 });
  const alice = d.client({ via: 'management', instance: 'i', cid: 1 });
  assert.equal(alice?.commonName, 'alice');
  assert.equal(alice?.username, undefined, 'no plugin verifies usernames: the listed one is a claim');
  assert.equal(alice?.connectedAt, 1795893109_000);
  assert.deepEqual(alice?.groups, []);
  assert.equal(d.sessions.byAddress('i', 'fd00::1'), alice);
  assert.deepEqual(await d.rebuild('i', [listed(1, 'alice', '10.8.0.2')]), { rebuilt: 0, closedAsMissed: 0 }, 'a live session is kept as it is');
  assert.equal(d.client({ via: 'management', instance: 'i', cid: 1 }), alice);
  assert.deepEqual(seen, [], 'without closeMissed nobody is closed');
});

test('rebuild: a list taken before a client left does not bring it back; a later connection on the same key is rebuilt', async () => {
  const d = new Dispatcher(new Pipeline([], log), log, 4);
  await d.rebuild('i', [listed(1, 'alice', '10.8.0.2')]);
  // alice leaves (here: missing from a current list)
  assert.deepEqual(await d.rebuild('i', [], { closeMissed: 'management' }), { rebuilt: 0, closedAsMissed: 1 });
  // a list read before she left (hook mode's status file is rewritten every few seconds)
  assert.deepEqual(await d.rebuild('i', [listed(1, 'alice', '10.8.0.2')]), { rebuilt: 0, closedAsMissed: 0 });
  assert.equal(d.sessions.size, 0, 'no ghost session');
  // the same key connected again after she left: a new connection, rebuilt
  assert.deepEqual(await d.rebuild('i', [{ ...listed(1, 'alice', '10.8.0.2'), connectedAt: Date.now() + 60_000 }]), { rebuilt: 1, closedAsMissed: 0 });
});

test('rebuild with closeMissed: live sessions of that kind of key the list lacks get a missed disconnect carrying their addresses', async () => {
  const left: ClientDisconnectEvent[] = [];
  const pipeline = new Pipeline([plugin('p', { 'client-disconnect': (e) => void left.push(e) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  await d.rebuild('i', [listed(1, 'alice', '10.8.0.2'), listed(2, 'bob', '10.8.0.3')]);
  // a hook-mode session of the same instance name is no concern of the management list
  await d.handle({ raw: connect('carol', 5), keyOf });
  assert.equal(d.sessions.size, 3);
  const result = await d.rebuild('i', [listed(2, 'bob', '10.8.0.3'), listed(3, 'dave')], { closeMissed: 'management' });
  assert.deepEqual(result, { rebuilt: 0, closedAsMissed: 1 });
  assert.equal(left.length, 1);
  const [gone] = left;
  assert.equal(gone?.commonName, 'alice');
  assert.equal(gone?.missed, true);
  assert.equal(gone?.source, 'management');
  assert.equal(gone?.vpnAddress, '10.8.0.2');
  assert.equal(gone?.vpnAddress6, 'fd00::1');
  assert.equal(gone?.realPort, 40001);
  assert.equal(d.client({ via: 'management', instance: 'i', cid: 1 }), undefined);
  assert.equal(d.sessions.size, 2);
});

test('an address OpenVPN assigns after the connect: the session learns it, and plugins hear a typed learn-address add', async () => {
  const learned: { event: LearnAddressEvent; known: boolean }[] = [];
  const pipeline = new Pipeline([plugin('p', { 'learn-address': (event, ctx) => void learned.push({ event, known: ctx.session !== undefined }) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  await d.rebuild('i', [listed(1, 'alice', '10.8.0.2')]);
  const alice = { via: 'management', instance: 'i', cid: 1 } as const;
  assert.equal((await d.addressAssigned(alice, '10.8.0.9')).verdict, 'accept');
  assert.equal(d.client(alice)?.vpnAddress, '10.8.0.9');
  assert.equal(d.sessions.byAddress('i', '10.8.0.9')?.commonName, 'alice');
  assert.equal(d.sessions.byAddress('i', '10.8.0.2'), undefined);
  assert.deepEqual(
    learned.map(({ event: e, known }) => [e.operation, e.address, e.commonName, e.source, e.args, known]),
    [['add', '10.8.0.9', 'alice', 'management', ['add', '10.8.0.9', 'alice'], true]],
  );
  // a client the daemon does not know, and an address that is no address
  assert.equal((await d.addressAssigned({ via: 'management', instance: 'i', cid: 9 }, '10.8.0.50')).verdict, 'accept');
  assert.equal(learned.at(-1)?.event.commonName, undefined);
  assert.equal((await d.addressAssigned(alice, '10.8.0.9;reboot')).verdict, 'deny');
  assert.equal(learned.length, 2);
});

test('learnAtConnect: an accepted client’s addresses become learn-address adds; nothing once it has left', async () => {
  const learned: string[] = [];
  const pipeline = new Pipeline([plugin('p', { 'learn-address': (e, ctx) => void learned.push(`${e.address} ${ctx.session?.commonName}`) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  let k: ConnectionKey | undefined;
  await d.handle({ raw: connect('alice', 1), keyOf: (e) => (k = keyOf(e)) });
  await d.learnAtConnect(k!);
  assert.deepEqual(learned, ['10.8.0.101 alice', 'fd00::101 alice']);
  await d.handle({ raw: { ...connect('alice', 1), name: 'client-disconnect' }, keyOf });
  await d.learnAtConnect(k!);
  assert.equal(learned.length, 2);
});

test('a new connect on a live session’s connection (a restarted OpenVPN reusing client ids) ends that session as missed first', async () => {
  const heard: string[] = [];
  const pipeline = new Pipeline(
    [
      plugin('watch', {
        'client-connect': (e) => void heard.push(`connect ${e.commonName}`),
        'client-disconnect': (e) => void heard.push(`disconnect ${e.commonName}${e.missed ? ' missed' : ''} ${e.vpnAddress ?? ''}`),
      }),
    ],
    log,
  );
  const d = new Dispatcher(pipeline, log, 4);
  const cid0 = (): ConnectionKey => ({ via: 'management', instance: 'i', cid: 0 });
  const mgmtConnect = (commonName: string, port: number): RawEvent => ({ ...connect(commonName, port), source: 'management' });
  assert.equal((await d.handle({ raw: mgmtConnect('before', 1000), keyOf: cid0 })).verdict, 'accept');
  assert.equal(d.client(cid0())?.commonName, 'before');
  assert.equal((await d.handle({ raw: mgmtConnect('after', 2000), keyOf: cid0 })).verdict, 'accept');
  assert.deepEqual(heard, ['connect before', 'disconnect before missed 10.8.0.100', 'connect after']);
  assert.equal(d.client(cid0())?.commonName, 'after');
  assert.equal(d.clients().length, 1);
});

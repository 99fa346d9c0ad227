import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../events/event-map.ts';
import type { RawEvent } from '../events/parse-event.ts';
import { createLogger } from '../logger.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { LiveSession, PluginInstance } from '../plugins/plugin-api.ts';
import { Dispatcher, pushedAddresses } from './dispatcher.ts';

const log = createLogger('silent');
const plugin = (name: string, instance: PluginInstance): LoadedPlugin => ({ name, path: `/${name}.ts`, timeoutMs: 1000, instance });
const sessionKey = (e: ClientConnectEvent | ClientDisconnectEvent) => `${e.instance}/${e.realAddress}:${e.realPort}`;

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

test('the addresses of an answer: the last ifconfig-push and ifconfig-ipv6-push win, IPv6 canonical, anything else ignored', () => {
  assert.deepEqual(pushedAddresses(['push "route 10.1.0.0 255.255.0.0"', 'iroute 10.9.0.0 255.255.0.0']), {});
  assert.deepEqual(
    pushedAddresses(['ifconfig-push 10.8.0.10 255.255.255.0', ' ifconfig-push  10.8.0.11 255.255.255.0 ', 'ifconfig-ipv6-push FD00:0:0::0A/64 fd00::1']),
    {
      vpnAddress: '10.8.0.11',
      vpnAddress6: 'fd00::a',
    },
  );
  assert.deepEqual(
    pushedAddresses(['ifconfig-push not-an-address 255.255.255.0', 'ifconfig-ipv6-push 10.8.0.1/64', 'push "ifconfig-push 10.8.0.12 255.255.255.0"']),
    {},
  );
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

  assert.equal((await d.handle({ raw: connect('alice', 1), sessionKey })).verdict, 'accept');
  assert.equal((await d.handle({ raw: connect('bob', 2), sessionKey })).verdict, 'accept');
  assert.equal(decided[0]?.vpnAddress, '10.8.0.10');
  assert.equal(decided[0]?.vpnAddress6, 'fd00::10');
  assert.equal(decided[1]?.vpnAddress, '10.8.0.102', 'no ifconfig-push: the pool address');

  const alice = d.sessions.byAddress('i', '10.8.0.10');
  assert.equal(alice?.commonName, 'alice');
  assert.equal(d.sessions.byAddress('i', 'fd00::10'), alice);
  assert.equal(d.sessions.byAddress('i', '10.8.0.101'), undefined, 'the pool address is not hers');

  // OpenVPN learns the static address: the plugins get the session that holds it
  await d.handle({ raw: learn('10.8.0.10', 'alice'), sessionKey });
  await d.handle({ raw: learn('fd00::10/128', 'alice'), sessionKey });
  await d.handle({ raw: learn('10.8.0.101', 'alice'), sessionKey });
  assert.deepEqual(learned, [{ known: true }, { known: true }, { known: false }]);
});

test('a reauth keeps the live session and its address; a disconnect takes the session out of the address index', async () => {
  let push = 'ifconfig-push 10.8.0.10 255.255.255.0';
  const pipeline = new Pipeline([plugin('static', { 'client-connect': (_e, ctx) => ctx.config(push) })], log);
  const d = new Dispatcher(pipeline, log, 4);
  await d.handle({ raw: connect('alice', 1), sessionKey });
  const first = d.sessions.byAddress('i', '10.8.0.10');
  assert.ok(first);
  // OpenVPN does not move a connected client: the session keeps the address it has
  push = 'ifconfig-push 10.8.0.20 255.255.255.0';
  await d.handle({ raw: connect('alice', 1, { reauth: true }), sessionKey });
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
    sessionKey,
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
  assert.equal((await d.handle({ raw: connect('alice', 1), sessionKey })).verdict, 'deny');
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
  await d.handle({ raw: claiming('guest-17', 'carol', 1), sessionKey });
  assert.deepEqual(last(), { username: undefined, claimed: 'carol', session: undefined });
  // verified for this address and port: identity
  assert.equal((await d.handle({ raw: auth('laptop', 'alice', 2), sessionKey })).verdict, 'accept');
  await d.handle({ raw: claiming('laptop', 'alice', 2), sessionKey });
  assert.deepEqual(last(), { username: 'alice', claimed: 'alice', session: 'alice' });
  assert.equal(d.sessions.get('i/198.51.100.7:2')?.username, 'alice');
  // alice verified on port 3; a client on port 4 claiming alice, and port 3 claiming carol, are not her
  await d.handle({ raw: auth('laptop', 'alice', 3), sessionKey });
  await d.handle({ raw: claiming('guest-17', 'alice', 4), sessionKey });
  assert.equal(last()?.username, undefined);
  await d.handle({ raw: claiming('laptop', 'carol', 3), sessionKey });
  assert.equal(last()?.username, undefined);
  // taken once: the next connect from port 3 is not verified by the earlier auth
  await d.handle({ raw: claiming('laptop', 'alice', 3), sessionKey });
  assert.equal(last()?.username, undefined);
  // refused at user-pass-verify: nothing verified
  assert.equal((await d.handle({ raw: auth('guest-17', 'mallory', 5), sessionKey })).verdict, 'deny');
  await d.handle({ raw: claiming('guest-17', 'mallory', 5), sessionKey });
  assert.equal(last()?.username, undefined);
  // a deny after an accept on the same address and port forgets the accept
  await d.handle({ raw: auth('x', 'alice', 6), sessionKey });
  await d.handle({ raw: auth('x', 'mallory', 6), sessionKey });
  await d.handle({ raw: claiming('x', 'alice', 6), sessionKey });
  assert.equal(last()?.username, undefined);
});

test('a plugin that only watches user-pass-verify verifies nothing; OpenVPN does where the config says so', async () => {
  const watched = identityLab({ verifier: false });
  assert.equal((await watched.d.handle({ raw: auth('guest-17', 'carol', 1), sessionKey })).verdict, 'accept');
  await watched.d.handle({ raw: claiming('guest-17', 'carol', 1), sessionKey });
  assert.deepEqual(watched.last(), { username: undefined, claimed: 'carol', session: undefined });
  assert.equal(watched.d.sessions.restoredUsernamesVerified, false, 'usernames of rebuilt sessions are not trusted either');

  const openvpn = identityLab({ verifier: false, openvpn: true });
  await openvpn.d.handle({ raw: claiming('laptop', 'carol', 1), sessionKey });
  assert.deepEqual(openvpn.last(), { username: 'carol', claimed: 'carol', session: 'carol' });
  assert.equal(openvpn.d.sessions.restoredUsernamesVerified, true);
  // a reload can change it
  openvpn.d.identity = {};
  assert.equal(openvpn.d.sessions.restoredUsernamesVerified, false);
  await openvpn.d.handle({ raw: claiming('laptop', 'carol', 2), sessionKey });
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
  const rebuilt = unverified.d.sessions.create('k', { instance: 'i', commonName: 'guest-17', username: 'alice' });
  assert.equal(rebuilt.username, undefined);
  // a disconnect of a client the daemon never saw connect
  const gone: RawEvent = {
    name: 'client-disconnect',
    instance: 'i',
    source: 'hook',
    env: { common_name: 'guest-17', username: 'alice', trusted_ip: '198.51.100.7', trusted_port: '9' },
  };
  await unverified.d.swap(pipeline(false));
  await unverified.d.handle({ raw: gone, sessionKey });
  await unverified.d.swap(pipeline(true));
  assert.equal(unverified.d.sessions.restoredUsernamesVerified, true, 'a verifying plugin now guards every connect');
  assert.equal(unverified.d.sessions.create('k', { instance: 'i', commonName: 'laptop', username: 'alice' }).username, 'alice');
  await unverified.d.handle({ raw: gone, sessionKey });
  assert.deepEqual(left, [undefined, 'alice']);
});

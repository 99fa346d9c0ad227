import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import { createLogger } from '../../../logger.ts';
import type { ClientConnectEvent, ClientDisconnectEvent } from '../../../events/event-map.ts';
import { StoreSessionRecords } from '../../../daemon/session-records.ts';
import { SqliteStore } from '../../../store/sqlite-store.ts';
import { waitFor } from '../../../lab/wait.ts';
import type { LiveSession, PluginInstance, Services } from '../../plugin-api.ts';
import sessionLimit from './index.ts';

/** One daemon serving `instance`, with the session-limit plugin on a store file shared with others. */
async function daemon(t: TestContext, file: string, instance: string, options: Record<string, unknown>) {
  const store = new SqliteStore(file);
  const live: LiveSession[] = [];
  const killed: { commonName: string; reason: string }[] = [];
  const services: Services = {
    records: new StoreSessionRecords(store),
    sessions: { list: () => live },
    kill: async (s, reason) => void killed.push({ commonName: s.commonName, reason }),
  };
  const parsed = sessionLimit.options!(z).parse(options);
  const plugin: PluginInstance = await sessionLimit.setup({
    options: parsed,
    log: createLogger('silent'),
    instance,
    configDir: '/',
    signal: new AbortController().signal,
    services,
  });
  t.after(async () => {
    await plugin.close?.();
    await store.close();
  });
  let port = 40000;
  const connect = async (commonName: string, username?: string, groups: string[] = []) => {
    const s: LiveSession = {
      id: `${instance}-${port}`,
      instance,
      commonName,
      username,
      realAddress: '198.51.100.7',
      realPort: port++,
      connectedAt: Date.now(),
      groups,
    };
    const event = {
      name: 'client-connect',
      instance,
      commonName,
      username,
      realAddress: s.realAddress,
      realPort: s.realPort,
      reauth: false,
    } as ClientConnectEvent;
    await plugin.decided!(event, { verdict: 'accept', config: [] }, s);
    live.push(s);
    return s;
  };
  const disconnect = async (s: LiveSession) => {
    live.splice(live.indexOf(s), 1);
    const event = {
      name: 'client-disconnect',
      instance,
      commonName: s.commonName,
      realAddress: s.realAddress,
      realPort: s.realPort,
      bytesReceived: 1,
      bytesSent: 2,
      duration: 3,
      missed: false,
    } as ClientDisconnectEvent;
    await plugin['client-disconnect']!(event, { state: new Map() } as never);
  };
  return { store, plugin, connect, disconnect, killed };
}

async function storeFile(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-limit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'a.db');
}

test('deny-new: the connect over the limit is refused; a slot freed by a disconnect is usable again', async (t) => {
  const d = await daemon(t, await storeFile(t), 'vpn1', { max: 2 });
  const a = await d.connect('laptop', 'alice');
  await d.connect('phone', 'alice');
  await assert.rejects(d.connect('tablet', 'alice'), /"alice" has 2 session\(s\) open, at most 2 allowed/);
  await d.connect('laptop'); // no username: the common name is the user, and it is someone else
  await d.disconnect(a);
  await d.connect('tablet', 'alice');
  assert.equal(await d.store.countOpen('alice'), 2);
  assert.deepEqual(d.killed, []);
});

test("groups: a member of a listed client group gets that group's limit (the largest of its groups'), others max", async (t) => {
  const d = await daemon(t, await storeFile(t), 'vpn1', { max: 1, groups: { 'vpn-admins': 3, 'Domain Admins': 2 } });
  await d.connect('a1', 'alice', ['Domain Admins', 'vpn-admins']);
  await d.connect('a2', 'alice', ['vpn-admins']);
  await d.connect('a3', 'alice', ['vpn-admins']);
  await assert.rejects(d.connect('a4', 'alice', ['vpn-admins']), /"alice" has 3 session\(s\) open, at most 3 allowed/);
  await d.connect('b1', 'bob', ['Domain Admins']);
  await d.connect('b2', 'bob', ['Domain Admins']);
  await assert.rejects(d.connect('b3', 'bob', ['Domain Admins']), /at most 2 allowed/);
  // exactly: another spelling is no member
  await d.connect('c1', 'carol', ['VPN-Admins']);
  await assert.rejects(d.connect('c2', 'carol', ['VPN-Admins']), /at most 1 allowed/);
  assert.throws(() => sessionLimit.options!(z).parse({ max: 1, groups: { x: 0 } }));
});

test('disconnect-oldest: the new session is admitted and the oldest is disconnected, its record ending as killed', async (t) => {
  const d = await daemon(t, await storeFile(t), 'vpn1', { max: 1, 'on-exceed': 'disconnect-oldest' });
  const old = await d.connect('bob');
  await d.connect('bob');
  await waitFor('the oldest killed', () => d.killed.length === 1);
  assert.deepEqual(d.killed, [{ commonName: 'bob', reason: 'HALT,a newer session of this user replaced this one' }]);
  await d.disconnect(old);
  const [newest, oldest] = await d.store.sessions({ user: 'bob' });
  assert.equal(oldest?.endReason, 'killed');
  assert.equal(newest?.endedAt, undefined);
});

test('disconnect-oldest across servers: the daemon serving the oldest session disconnects it on request', async (t) => {
  const file = await storeFile(t);
  const one = await daemon(t, file, 'vpn1', { max: 1, 'on-exceed': 'disconnect-oldest', 'kill-poll': 0.2 });
  const two = await daemon(t, file, 'vpn2', { max: 1, 'on-exceed': 'disconnect-oldest', 'kill-poll': 0.2 });
  const old = await one.connect('carol');
  await two.connect('carol');
  await waitFor('vpn1 kills the oldest', () => one.killed.length === 1, { timeoutMs: 10_000 });
  assert.deepEqual(two.killed, []);
  await one.disconnect(old);
  const records = (await one.store.sessions({ user: 'carol' })).map((r) => [r.instance, r.endReason]).sort();
  assert.deepEqual(records, [
    ['vpn1', 'killed'],
    ['vpn2', undefined],
  ]);
});

test('a deny by a later plugin frees the slot; the plugin refuses to run without a store or with a wrong option', async (t) => {
  const d = await daemon(t, await storeFile(t), 'vpn1', { max: 1 });
  const s = await d.connect('dave');
  await d.plugin.decided!(
    { name: 'client-connect', instance: 'vpn1', commonName: 'dave', reauth: false } as ClientConnectEvent,
    { verdict: 'deny', reason: 'x', config: [] },
    s,
  );
  await d.connect('dave');
  assert.throws(() => sessionLimit.options!(z).parse({ max: 1, 'on-exceed': 'kick' }), /deny-new/);
  assert.throws(() => sessionLimit.options!(z).parse({ max: 0 }));
  await assert.rejects(
    async () =>
      sessionLimit.setup({
        options: { max: 1, 'on-exceed': 'deny-new', 'kill-poll': 2 },
        log: createLogger('silent'),
        instance: 'x',
        configDir: '/',
        signal: new AbortController().signal,
        services: { sessions: { list: () => [] }, kill: async () => {} },
      }),
    /needs|store/,
  );
});

test('usernames and common names are separate keys: username alice is not common name alice', async (t) => {
  const d = await daemon(t, await storeFile(t), 'vpn1', { max: 1, 'on-exceed': 'disconnect-oldest' });
  // alice by certificate, without a username
  await d.connect('alice');
  // a verified username alice on another certificate: a key of its own, nobody is disconnected
  await d.connect('laptop', 'alice');
  // a certificate named like a username counts as that common name, not against the username
  await d.connect('carol');
  await d.connect('phone', 'carol');
  await new Promise((r) => setImmediate(r));
  assert.equal(d.killed.length, 0, 'nobody is disconnected');
  // a second session of username alice does replace the first one
  await d.connect('tablet', 'alice');
  await waitFor('username alice over the limit', () => d.killed.length === 1);
  assert.deepEqual(
    d.killed.map((k) => k.commonName),
    ['laptop'],
  );
});

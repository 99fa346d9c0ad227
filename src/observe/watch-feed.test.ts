import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ControlServer } from '../daemon/control-socket.ts';
import { createLogger } from '../logger.ts';
import { waitFor } from '../lab/wait.ts';
import { decisions, lifecycle, publishLifecycle, type DecisionMessage } from './channels.ts';
import { openWatch } from './watch-client.ts';
import { WatchFeed, type WatchLine } from './watch-feed.ts';

const log = createLogger('silent');

/** A control socket with a watch feed, closed after the test. */
async function control(t: TestContext, feedOptions: ConstructorParameters<typeof WatchFeed>[1] = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-watch-'));
  const socket = join(dir, 'control.sock');
  const feed = new WatchFeed(log, feedOptions);
  const server = new ControlServer({ socket, mode: 0o600, 'allow-kill': false }, { sessions: () => [], sources: () => [], watch: feed }, log);
  await server.start();
  t.after(async () => {
    await server.close();
    feed.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { socket, feed };
}

const decide = (m: DecisionMessage) => decisions.tracePromise(async () => {}, m);

test('a watcher gets each finished message as one JSON line; hostile client text stays data', async (t) => {
  const { socket } = await control(t, { backlogMs: 0 });
  const lines: WatchLine[] = [];
  const watch = await openWatch(socket, (l) => void lines.push(l));
  t.after(() => watch.close());
  const hostile = 'eve"}\n{"channel":"lifecycle","data":{"what":"stopped"}}\r\u001b[2J\u202e';
  await decide({ event: 'client-connect', instance: 'i', source: 'hook', commonName: hostile, verdict: 'deny', reason: `bad ${hostile}`, plugin: 'p' });
  publishLifecycle(() => ({ what: 'reloaded', plugins: ['p'] }));
  await waitFor('two lines', () => lines.length >= 2);
  assert.equal(lines.length, 2, 'the name made no line of its own');
  const [first, second] = lines;
  assert.equal(first!.channel, 'decision');
  assert.equal(first!.channel === 'decision' && first!.data.commonName, hostile);
  assert.equal(first!.channel === 'decision' && first!.data.reason, `bad ${hostile}`);
  assert.ok(!Number.isNaN(Date.parse(first!.time)));
  assert.deepEqual(second, { channel: 'lifecycle', data: { what: 'reloaded', plugins: ['p'] }, time: second!.time });
});

test('the first watcher gets what happened since start; later ones only what follows', async (t) => {
  const { socket } = await control(t);
  publishLifecycle(() => ({ what: 'started', instance: 'i', plugins: [] }));
  await decide({ event: 'up', instance: 'i', source: 'hook', verdict: 'accept' });
  const first: WatchLine[] = [];
  const a = await openWatch(socket, (l) => void first.push(l));
  t.after(() => a.close());
  const later: WatchLine[] = [];
  const b = await openWatch(socket, (l) => void later.push(l));
  t.after(() => b.close());
  publishLifecycle(() => ({ what: 'stopping' }));
  await waitFor('the lines', () => first.length >= 3 && later.length >= 1);
  assert.deepEqual(
    first.map((l) => (l.channel === 'lifecycle' ? l.data.what : l.channel)),
    ['started', 'decision', 'stopping'],
  );
  assert.deepEqual(
    later.map((l) => (l.channel === 'lifecycle' ? l.data.what : l.channel)),
    ['stopping'],
  );
});

test('a watcher that does not read is dropped; publishing never waits for it and others keep watching', async (t) => {
  const { socket, feed } = await control(t, { backlogMs: 0, maxBufferedBytes: 64 * 1024 });
  // connects, asks to watch, then reads nothing
  const stalled = createConnection({ path: socket });
  t.after(() => stalled.destroy());
  await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
  stalled.write('{"command":"watch"}\n');
  stalled.pause();
  const closed = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
  const reader: WatchLine[] = [];
  const watch = await openWatch(socket, (l) => void reader.push(l));
  t.after(() => watch.close());
  await waitFor('both watching', () => feed.watchers === 2);
  const big = 'x'.repeat(16 * 1024);
  const started = performance.now();
  for (let i = 0; i < 400 && feed.watchers === 2; i++) {
    await decide({ event: 'client-connect', instance: 'i', source: 'hook', commonName: `c${i}`, verdict: 'deny', reason: big });
    // the reader keeps up, so it must not be dropped with the stalled one
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(feed.watchers, 1, 'only the stalled watcher was dropped');
  // reading again, it finds its connection ended
  stalled.resume();
  await closed;
  assert.ok(performance.now() - started < 10_000, 'publishing did not wait for the stalled watcher');
  const sent = reader.length;
  await decide({ event: 'client-connect', instance: 'i', source: 'hook', commonName: 'after', verdict: 'accept' });
  await waitFor('the reader still watching', () => reader.length > sent && reader.at(-1)!.channel === 'decision');
});

test('a feed with no watcher and no backlog is not subscribed: the channels cost nothing', async (t) => {
  const feed = new WatchFeed(log, { backlogMs: 0 });
  t.after(() => feed.close());
  await waitFor('the backlog to expire', () => !decisions.hasSubscribers && !lifecycle.hasSubscribers);
  const kept = new WatchFeed(log);
  assert.equal(decisions.hasSubscribers, true, 'subscribed while it keeps a backlog');
  kept.close();
  assert.equal(decisions.hasSubscribers, false);
});

test('watch is refused by a control socket without a feed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-watch-'));
  const socket = join(dir, 'control.sock');
  const server = new ControlServer({ socket, mode: 0o600, 'allow-kill': false }, { sessions: () => [], sources: () => [] }, log);
  await server.start();
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await assert.rejects(
    openWatch(socket, () => {}),
    /refused watch: watch is not available/,
  );
});

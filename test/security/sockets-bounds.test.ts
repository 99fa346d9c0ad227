/**
 * The control socket and the pass-through hold bounded memory per connection and a bounded
 * number of connections: an endless line is refused with an error and the connection closed,
 * and connections over the limit are refused the same way.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { MAX_CONNECTIONS } from '../../src/util/line-server.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { connect, connectionsTo, readAll, socketDaemon } from './socket-daemon.ts';

const MiB = 1024 * 1024;

/** Writes `total` bytes with no newline, as fast as the daemon takes them, until it closes the connection. */
async function flood(path: string, total: number): Promise<{ answer: string; sent: number }> {
  const s = await connect(path);
  const answer = readAll(s);
  const chunk = Buffer.alloc(MiB, 'A');
  let sent = 0;
  let closed = false;
  s.once('close', () => (closed = true));
  while (sent < total && !closed) {
    sent += chunk.length;
    if (!s.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.on('drain', done).on('close', done);
      });
    }
  }
  // a daemon that kept reading gets the end of input; one that stopped has closed already
  if (!closed) s.end();
  return { answer: await answer, sent };
}

test('100 MiB without a newline: the connection gets an error and is closed, memory stays bounded', async (t) => {
  const d = await socketDaemon(t);
  const before = d.memory('VmRSS');
  const control = await flood(d.control, 100 * MiB);
  const passThrough = await flood(d.passThrough, 100 * MiB);
  const peak = d.memory('VmHWM');
  assert.ok(peak - before < 64 * MiB, `the daemon grew from ${before / MiB} MiB to a peak of ${peak / MiB} MiB`);
  assert.match(control.answer, /^\{"ok":false,"error":"request line longer than \d+ bytes[^"]*"\}\n$/);
  assert.match(passThrough.answer, /^ERROR: request line longer than \d+ bytes.*\n$/);
  assert.ok(control.sent < 100 * MiB && passThrough.sent < 100 * MiB, 'the daemon stopped taking the flood');
  await d.assertServing('two floods');
});

test('connections over the limit are refused with an error line; the daemon serves again once they are gone', async (t) => {
  const d = await socketDaemon(t);
  for (const [path, refusal] of [
    [d.control, /^\{"ok":false,"error":"too many connections[^"]*"\}\n$/],
    [d.passThrough, /^ERROR: too many connections.*\n$/],
  ] as const) {
    const held: Socket[] = [];
    t.after(() => {
      for (const s of held) s.destroy();
    });
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = await connect(path);
      s.on('error', () => undefined);
      held.push(s);
    }
    await waitFor('the daemon holding every connection', () => connectionsTo(path) === MAX_CONNECTIONS);
    const extra = await connect(path);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((_, reject) => (timer = setTimeout(() => reject(new Error('no refusal within 30 s')), 30_000)));
    assert.match(await Promise.race([readAll(extra), late]), refusal);
    clearTimeout(timer);
    extra.destroy();
    // the held ones still work
    const first = held[0]!;
    const answer = new Promise<string>((resolve) => first.once('data', (b) => resolve(String(b))));
    first.write(path === d.control ? '{"command":"status"}\n' : 'pid\n');
    assert.ok((await answer).length > 0);
    for (const s of held) s.destroy();
    await d.assertServing(`${MAX_CONNECTIONS} connections dropped`);
  }
});

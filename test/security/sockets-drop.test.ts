/**
 * Whoever may connect to the control socket or the pass-through cannot stop the daemon by
 * dropping a connection in any state: each socket error stays with its connection.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { connect, readAll, socketDaemon } from './socket-daemon.ts';

const REQUEST = { control: '{"command":"status"}\n', passThrough: 'pid\n' } as const;
type Which = keyof typeof REQUEST;

/** Many requests in one write, none of the answers read: the daemon's writes pile up. */
async function unreadAnswers(path: string, request: string, count = 4000): Promise<Socket> {
  const s = await connect(path);
  s.on('error', () => undefined);
  s.write(request.repeat(count));
  // with no reader, Node stops taking data from the kernel once its own buffer is full; the
  // rest of the answers wait in the kernel's queue
  await waitFor('answers filling the client buffer', () => s.readableLength >= s.readableHighWaterMark || s.destroyed, { timeoutMs: 60_000 });
  assert.ok(!s.destroyed, 'the connection was dropped before any answer came');
  return s;
}

test('dropping control or pass-through connections in any state leaves the daemon serving', async (t) => {
  const d = await socketDaemon(t);
  const paths: Record<Which, string> = { control: d.control, passThrough: d.passThrough };

  for (const which of ['control', 'passThrough'] as const) {
    const path = paths[which];
    const request = REQUEST[which];

    // connect and close at once, many times over
    await Promise.all(Array.from({ length: 50 }, async () => (await connect(path)).destroy()));
    await d.assertServing(`${which}: connect and close at once`);

    // half a line, then close (both an orderly end and an abrupt one)
    for (const end of ['end', 'destroy'] as const) {
      const s = await connect(path);
      s.on('error', () => undefined);
      s.write(request.slice(0, 7));
      s[end]();
      await d.assertServing(`${which}: half a line then ${end}`);
    }

    // a request, then the connection reset with the answer unread (ECONNRESET / EPIPE on the daemon's side)
    for (let i = 0; i < 3; i++) {
      const s = await connect(path);
      s.on('error', () => undefined);
      s.write(request);
      s.destroy();
    }
    await d.assertServing(`${which}: a request, then close before the answer`);
    (await unreadAnswers(path, request)).destroy();
    await d.assertServing(`${which}: a request, then reset before reading the answer`);

    // many slow readers at once, on the other socket too, then all gone at once (each asks for
    // more answers than fill its buffer: 64 KiB from Node.js 22 on, 16 KiB before)
    const slow = await Promise.all(Array.from({ length: 40 }, () => unreadAnswers(path, request).catch(() => undefined)));
    if (which === 'passThrough') await d.assertServing('slow readers on the pass-through', true);
    for (const s of slow) s?.destroy();
    await d.assertServing(`${which}: many slow readers dropped at once`);
  }

  // a fresh client still gets its answer on each socket, also one that ends its side right
  // after its request (and one whose last request lacks the newline)
  const pid = await connect(d.passThrough);
  const text = readAll(pid);
  pid.end('pid\n');
  assert.match(await text, /^ERROR: .*not attached/);
  const status = await connect(d.control);
  const answer = readAll(status);
  status.end('{"command":"status"}');
  assert.equal(await answer, '{"ok":true,"sessions":[]}\n');
});

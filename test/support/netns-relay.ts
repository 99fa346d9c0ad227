/**
 * Loopback TCP between the host and a network namespace, for a test whose daemon runs in the
 * namespace while its identity provider and browser stay on the host. Each namespace has its own
 * 127.0.0.1, but both share the file system: a relay carries each connection through a unix
 * socket, so the same http://127.0.0.1:PORT URL works on both sides (the web-login plugin takes
 * plain http only on loopback). The relay inside the namespace is a small Node.js process.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';

/** Pipes one connection to another, closing both when either ends. */
function pipe(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

const listen = (server: Server, where: string | { port: number; host: string }) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => resolve());
  });

/** The namespace side (run with `node -e`): argv is the socket folder, then `in:PORT` and `out:PORT` items. */
const NAMESPACE_SIDE = `
const net = require('node:net');
const [dir, ...items] = process.argv.slice(1);
const pipe = (a, b) => { a.pipe(b); b.pipe(a); const end = () => { a.destroy(); b.destroy(); }; a.on('error', end).on('close', end); b.on('error', end).on('close', end); };
for (const item of items) {
  const [way, port] = item.split(':');
  if (way === 'in') net.createServer((c) => pipe(c, net.connect(Number(port), '127.0.0.1'))).listen(dir + '/in-' + port + '.sock');
  else net.createServer((c) => pipe(c, net.connect(dir + '/out-' + port + '.sock'))).listen(Number(port), '127.0.0.1');
}
`;

/**
 * Relays `into` ports (host 127.0.0.1:PORT → the namespace's 127.0.0.1:PORT, e.g. a callback
 * server there) and `outOf` ports (the namespace's 127.0.0.1:PORT → the host's, e.g. a provider
 * here). Call it once the namespace exists and before anything there needs `outOf`.
 */
export async function relayLoopback(t: TestContext, netns: string, o: { readonly into: readonly number[]; readonly outOf: readonly number[] }): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-relay-'));
  const servers: Server[] = [];
  t.after(async () => {
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  });
  for (const port of o.outOf) {
    const s = createServer((c) => pipe(c, createConnection(port, '127.0.0.1')));
    servers.push(s);
    await listen(s, join(dir, `out-${port}.sock`));
  }
  const child = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, '-e', NAMESPACE_SIDE, dir, ...o.into.map((p) => `in:${p}`), ...o.outOf.map((p) => `out:${p}`)],
    {
      stdio: 'ignore',
    },
  );
  t.after(() => void child.kill('SIGKILL'));
  await waitFor('the relay in the namespace', () => o.into.every((p) => existsSync(join(dir, `in-${p}.sock`))) && child.exitCode === null, {
    timeoutMs: 20_000,
    intervalMs: 50,
  });
  for (const port of o.into) {
    const s = createServer((c) => pipe(c, createConnection(join(dir, `in-${port}.sock`))));
    servers.push(s);
    await listen(s, { port, host: '127.0.0.1' });
  }
}

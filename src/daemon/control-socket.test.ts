import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Client } from '../core/client.ts';
import { createLogger } from '../logger.ts';
import { ControlServer, type ControlSources } from './control-socket.ts';

const log = createLogger('silent');
const alice: Client & { id: string } = {
  id: 'a1',
  instance: 'vpn',
  key: { via: 'management', instance: 'vpn', cid: 7 },
  commonName: 'alice',
  connectedAt: 0,
  groups: [],
};

async function control(t: TestContext, allowKill: boolean, more: Partial<ControlSources> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-control-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'control.sock');
  const kills: [string, string][] = [];
  const server = new ControlServer(
    { socket, mode: 0o600, 'allow-kill': allowKill },
    {
      sessions: () => [alice],
      sources: () => [],
      kill: async (s, reason) => void kills.push([s.id, reason]),
      health: () => ({
        startedAt: '2026-11-30T00:00:00.000Z',
        instances: [{ name: 'vpn', via: 'management', attached: true }],
        queue: { queued: 0, concurrency: 4 },
      }),
      ...more,
    },
    log,
  );
  await server.start();
  t.after(() => server.close());
  const ask = (message: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const c = createConnection({ path: socket });
      let text = '';
      c.on('connect', () => c.write(`${JSON.stringify(message)}\n`));
      c.on('data', (d) => {
        text += d;
        if (text.includes('\n')) {
          c.end();
          resolve(JSON.parse(text.slice(0, text.indexOf('\n'))) as Record<string, unknown>);
        }
      });
      c.on('error', reject);
    });
  return { ask, kills };
}

test('status names each session by id and source; health reports instances, queue and whether kill is allowed', async (t) => {
  const c = await control(t, false);
  const status = await c.ask({ command: 'status' });
  assert.deepEqual(
    (status.sessions as { id: string; via: string }[]).map((s) => [s.id, s.via]),
    [['a1', 'management']],
  );
  const health = await c.ask({ command: 'health' });
  assert.equal(health.ok, true);
  assert.equal(health.sessions, 1);
  assert.equal(health.killAllowed, false);
  assert.deepEqual(health.queue, { queued: 0, concurrency: 4 });
  assert.deepEqual(health.instances, [{ name: 'vpn', via: 'management', attached: true }]);
});

test('kill is refused unless control.allow-kill; then it needs a live session id and a reason', async (t) => {
  const off = await control(t, false);
  assert.match(String((await off.ask({ command: 'kill', id: 'a1', reason: 'x' })).error), /allow-kill/);
  assert.deepEqual(off.kills, []);

  const on = await control(t, true);
  assert.equal((await on.ask({ command: 'health' })).killAllowed, true);
  assert.match(String((await on.ask({ command: 'kill', id: 'a1' })).error), /reason/);
  assert.match(String((await on.ask({ command: 'kill', id: 'a1', reason: 'x'.repeat(501) })).error), /reason/);
  assert.match(String((await on.ask({ command: 'kill', id: 'nobody', reason: 'x' })).error), /no live session/);
  assert.deepEqual(on.kills, []);
  assert.deepEqual(await on.ask({ command: 'kill', id: 'a1', reason: 'lost laptop', by: 'olga' }), { ok: true, killed: 1 });
  assert.deepEqual(on.kills, [['a1', 'lost laptop']]);
});

test('a kill the source cannot do is an error, not a success', async (t) => {
  const c = await control(t, true, {
    kill: async () => {
      throw new Error('cannot disconnect a client of vpn: it is not served through the management interface');
    },
  });
  const answer = await c.ask({ command: 'kill', id: 'a1', reason: 'x' });
  assert.equal(answer.ok, false);
  assert.match(String(answer.error), /management interface/);
});

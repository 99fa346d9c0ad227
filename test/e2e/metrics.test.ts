/**
 * Prometheus metrics from the real daemon while real clients connect, are denied and leave:
 * hook mode scraped over loopback TCP, management mode over a unix socket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ownedDir } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { CAPS, MODES, modeLab, type Mode } from './mode-lab.ts';
import { freeLoopbackPort } from '../support/free-port.ts';

type Target = { readonly port: number } | { readonly socketPath: string };

function get(target: Target, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
    const req = request({ ...where, path, method: 'GET', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample with exactly these labels, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').split(',').filter(Boolean).sort().join(',') === want) return Number(m[3]);
  }
  return undefined;
}

async function metricsTarget(t: { after(fn: () => void): void }, mode: Mode): Promise<{ target: Target; config: string[] }> {
  if (mode === 'hook') {
    const port = await freeLoopbackPort();
    return { target: { port }, config: ['metrics:', '  host: 127.0.0.1', `  port: ${port}`] };
  }
  const dir = ownedDir(mkdtempSync(join(tmpdir(), 'fxs-metrics-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'metrics.sock');
  return { target: { socketPath }, config: ['metrics:', `  socket: ${socketPath}`, '  group: nogroup', '  mode: "0660"'] };
}

for (const mode of MODES) {
  describe(`${mode} mode`, () => {
    test('metrics follow real accepts, denies, live sessions and disconnects', async (t) => {
      const { target, config } = await metricsTarget(t, mode);
      const h = await modeLab(t, mode, { extraConfig: config });
      if ('socketPath' in target) assert.equal(statSync(target.socketPath).mode & 0o777, 0o660, 'the socket has the configured mode');

      const first = await get(target);
      assert.equal(first.status, 200);
      assert.match(first.type, /^text\/plain; version=0\.0\.4/);
      assert.equal(sample(first.body, 'flexscript_live_sessions', { instance: 'e2e' }), 0);
      assert.equal(sample(first.body, 'flexscript_queue_depth'), 0);
      assert.ok((sample(first.body, 'flexscript_process_resident_memory_bytes') ?? 0) > 0, 'Node process metrics');
      if (CAPS[mode].managementInterface) {
        assert.equal(sample(first.body, 'flexscript_management_connected', { instance: 'e2e' }), 1);
      }
      assert.equal((await get(target, '/other')).status, 404);

      const [alice, bob, eve] = await Promise.all(
        ['alice', 'bob', 'deny-eve'].map((commonName) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] })),
      );
      await Promise.all([alice!.waitConnected(), bob!.waitConnected(), eve!.waitAuthFailed()]);

      const during = await waitFor('metrics of two accepts and a deny', async () => {
        const { body } = await get(target);
        const ok =
          sample(body, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'accept' }) === 2 &&
          (sample(body, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'deny' }) ?? 0) >= 1 &&
          sample(body, 'flexscript_live_sessions', { instance: 'e2e' }) === 2;
        return ok && body;
      });
      const connects = sample(during, 'flexscript_events_total', { event: 'client-connect', source: mode }) ?? 0;
      assert.ok(connects >= 3, `client-connect events counted from ${mode}: ${connects}`);
      assert.equal(sample(during, 'flexscript_plugin_call_seconds_count', { plugin: 'recorder', event: 'client-connect', outcome: 'ok' }), 2);
      assert.ok((sample(during, 'flexscript_plugin_call_seconds_count', { plugin: 'recorder', event: 'client-connect', outcome: 'deny' }) ?? 0) >= 1);

      await Promise.all([alice!.stop(), bob!.stop()]);
      const after = await waitFor('live sessions back to 0', async () => {
        const { body } = await get(target);
        return sample(body, 'flexscript_live_sessions', { instance: 'e2e' }) === 0 && body;
      });
      assert.equal(sample(after, 'flexscript_events_total', { event: 'client-disconnect', source: mode }), 2);
      assert.equal(sample(after, 'flexscript_decisions_total', { event: 'client-connect', verdict: 'accept' }), 2, 'accepts do not move on disconnect');

      await h.daemon.stop();
      await assert.rejects(get(target), 'the endpoint closes with the daemon');
    });
  });
}

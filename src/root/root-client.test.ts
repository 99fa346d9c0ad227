import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../test/root/wait.ts';
import { LIMITS, RootError, RootErrorCode, type DesiredState } from './protocol.ts';
import { RootClient, type RootClientLog } from './root-client.ts';

const fakeStage = resolve(fileURLToPath(import.meta.url), '..', '..', '..', 'test', 'root', 'fake-stage.ts');
const tsx = import.meta.resolve('tsx');

interface Record_ {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function memoryLog(): RootClientLog & { records: Record_[] } {
  const records: Record_[] = [];
  const at = (level: string) => (fields: object, msg?: string) => void records.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('RootClient (against a fake stage)', () => {
  let dir = '';
  const clients: RootClient[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fxs-root-client-'));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close(500)));
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  function client(desired: () => DesiredState | Promise<DesiredState>, extra: { timeoutMs?: number; restart?: { minMs: number; maxMs: number } } = {}) {
    n += 1;
    const record = join(dir, `requests-${n}.jsonl`);
    const log = memoryLog();
    const c = new RootClient({
      command: [process.execPath, '--import', tsx, fakeStage, record],
      log,
      desiredState: desired,
      restart: { minMs: 50, maxMs: 1000 },
      ...extra,
    });
    clients.push(c);
    const requests = async () =>
      (await readFile(record, 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: number; action: string; group?: string; sets?: unknown });
    return { c, log, requests };
  }

  it('refuses requests before start', async () => {
    const { c } = client(() => ({ sets: {}, routes: [] }));
    await assert.rejects(c.setAdd('staff', '10.8.0.2'), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.UNAVAILABLE);
  });

  it('sends reconcile first, then requests made while starting, and matches answers by id', async () => {
    const desired = { sets: { staff: ['10.8.0.2'] }, routes: [] };
    const { c, requests } = client(async () => desired);
    c.start();
    const results = await Promise.all([c.setAdd('staff', '10.8.0.3'), c.list(), c.setRemove('staff', '10.8.0.4')]);
    assert.deepEqual(results, [undefined, { sets: { staff: ['10.8.0.2'] }, routes: [] }, undefined]);
    const sent = await requests();
    // ensure goes out at once (it changes no element), reconcile before anything else
    assert.deepEqual(
      sent.map((r) => r.action),
      ['ensure', 'reconcile', 'set-add', 'list', 'set-remove'],
    );
    assert.deepEqual(sent[1]?.sets, desired.sets);
    assert.equal(c.stats.tableReady, true);
    await waitFor('the reconcile to count', () => c.stats.reconciles === 1);
  });

  it('turns a refusal into a RootError with its code', async () => {
    const { c } = client(() => ({ sets: {}, routes: [] }));
    c.start();
    await assert.rejects(c.setAdd('bad', '10.8.0.2'), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.UNKNOWN_GROUP);
  });

  it('fails a request that gets no answer in time', async () => {
    const { c, log } = client(() => ({ sets: {}, routes: [] }), { timeoutMs: 1500 });
    c.start();
    // the limit counts from the request, so let the stage finish starting first (on a busy
    // machine that can take longer than the limit itself)
    await waitFor('the stage to be up', () => log.records.some((r) => r.msg === 'flexscript-root: ready'));
    await assert.rejects(c.setAdd('slow', '10.8.0.2'), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.TIMEOUT);
    // the stage is still usable
    await c.setAdd('staff', '10.8.0.2');
  });

  it('restarts a stage that died, fails what was in flight, and reconciles again', async () => {
    let calls = 0;
    const { c, requests, log } = client(() => {
      calls += 1;
      return { sets: { staff: [`10.8.0.${calls}`] }, routes: [] };
    });
    c.start();
    await c.setAdd('staff', '10.8.0.9');
    const inFlight = c.setAdd('die', '10.8.0.2');
    await assert.rejects(inFlight, (e: unknown) => e instanceof RootError && e.code === RootErrorCode.UNAVAILABLE);
    await waitFor('the restart and second reconcile', () => c.stats.reconciles === 2);
    assert.equal(calls, 2, 'desiredState() is asked after every start');
    assert.equal(c.stats.starts, 2);
    const reconciles = (await requests()).filter((r) => r.action === 'reconcile');
    assert.deepEqual(
      reconciles.map((r) => r.sets),
      [{ staff: ['10.8.0.1'] }, { staff: ['10.8.0.2'] }],
    );
    assert.ok(log.records.some((r) => r.level === 'error' && r.msg === 'root stage stopped; restarting'));
    await c.setAdd('staff', '10.8.0.10');
  });

  it('backs off exponentially while the stage keeps failing', async () => {
    const log = memoryLog();
    const c = new RootClient({
      command: [process.execPath, '-e', 'process.exit(1)'],
      log,
      desiredState: () => ({ sets: {}, routes: [] }),
      restart: { minMs: 20, maxMs: 160 },
    });
    clients.push(c);
    c.start();
    const delays = () => log.records.filter((r) => r.msg === 'root stage stopped; restarting').map((r) => r.fields.restartInMs);
    await waitFor('six failures', () => delays().length >= 6);
    await c.close();
    assert.deepEqual(delays().slice(0, 6), [20, 40, 80, 160, 160, 160]);
    await assert.rejects(c.list(), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.CLOSED);
  });

  it('forwards the stage log (JSON at its level, plain text as warn)', async () => {
    const { c, log } = client(() => ({ sets: {}, routes: [] }));
    c.start();
    await waitFor('the forwarded ready line', () => log.records.find((r) => r.msg === 'flexscript-root: ready'));
    const ready = log.records.find((r) => r.msg === 'flexscript-root: ready');
    assert.equal(ready?.level, 'info');
    assert.equal(typeof (ready!.fields.root as { pid?: unknown }).pid, 'number');
    await waitFor('the plain line', () => log.records.find((r) => r.level === 'warn' && r.msg === 'flexscript-root: sudo: plain text on stderr'));
  });

  it('never has more requests written than the stage accepts, timed-out ones included', async () => {
    const { c, requests } = client(() => ({ sets: {}, routes: [] }), { timeoutMs: 4000 });
    c.start();
    await waitFor('the stage to answer', () => c.stats.reconciles === 1);
    const all = Array.from({ length: LIMITS.inflight + 10 }, (_, i) => c.setAdd('slow', `10.8.${i >> 8}.${(i & 255) + 1}`).catch((e: RootError) => e.code));
    const outcomes = await Promise.all(all);
    assert.deepEqual([...new Set(outcomes)], [RootErrorCode.TIMEOUT]);
    const slow = (await requests()).filter((r) => r.group === 'slow');
    assert.equal(slow.length, LIMITS.inflight, 'the rest waited on the client side');
  });

  it('a request refused as busy fails with BUSY and a reconcile follows', async () => {
    const { c, requests, log } = client(() => ({ sets: { staff: ['10.8.0.2'] }, routes: [] }));
    c.start();
    await waitFor('the stage to answer', () => c.stats.reconciles === 1);
    await assert.rejects(c.setRemove('busy', '10.8.0.3'), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.BUSY);
    await waitFor('the reconcile after the refusal', () => c.stats.reconciles === 2);
    assert.equal((await requests()).filter((r) => r.action === 'reconcile').length, 2);
    assert.ok(log.records.some((r) => r.level === 'error' && /busy/.test(r.msg)));
  });

  it('reports the table as not ready, and why, while the stage cannot start', async () => {
    const log = memoryLog();
    const fatal = JSON.stringify({ level: 'fatal', msg: '/etc/flexscript/root.yaml: owned by uid 65534, not root', pid: 1 });
    const c = new RootClient({
      command: [
        process.execPath,
        '-e',
        `process.stderr.write(${JSON.stringify(`${fatal}
`)}); process.exitCode = 78`,
      ],
      log,
      desiredState: () => ({ sets: {}, routes: [] }),
      restart: { minMs: 50, maxMs: 100 },
    });
    clients.push(c);
    assert.equal(c.tableStatus().ready, false);
    c.start();
    await waitFor('a failed start', () => c.stats.exits >= 1);
    const status = c.tableStatus();
    assert.equal(status.ready, false);
    assert.match(status.reason ?? '', /exit code 78.*owned by uid 65534, not root/);
    assert.equal(c.stats.tableReady, false);
    await c.close();
  });

  it('tableSettled waits while the stage starts: ready once ensure is answered', async () => {
    const { c } = client(() => ({ sets: {}, routes: [] }));
    c.start();
    assert.deepEqual({ ready: c.tableStatus().ready, pending: c.tableStatus().pending }, { ready: false, pending: true });
    const settled = await c.tableSettled();
    assert.equal(settled.ready, true);
  });

  it('tableSettled gives up at once, with the reason, when the stage dies before the table', async () => {
    const log = memoryLog();
    const c = new RootClient({
      command: [process.execPath, '-e', 'process.stderr.write("sudo: a password is required\\n"); process.exitCode = 1'],
      log,
      desiredState: () => ({ sets: {}, routes: [] }),
      restart: { minMs: 5000, maxMs: 5000 },
    });
    clients.push(c);
    c.start();
    const settled = await c.tableSettled(AbortSignal.timeout(20_000));
    assert.equal(settled.ready, false);
    assert.equal(settled.pending, false);
    assert.match(settled.reason ?? '', /not running \(backoff\): it stopped \(exit code 1\): sudo: a password is required/);
    await c.close();
  });

  it('close() lets the stage finish and stops it; nothing restarts', async () => {
    const { c } = client(() => ({ sets: {}, routes: [] }));
    c.start();
    await c.list();
    await c.close();
    assert.equal(c.stats.state, 'closed');
    assert.equal(c.stats.pid, undefined);
    assert.equal(c.stats.starts, 1);
    await assert.rejects(c.setAdd('staff', '10.8.0.2'), (e: unknown) => e instanceof RootError && e.code === RootErrorCode.CLOSED);
  });
});

/**
 * The benchmark is not a timed test; this runs it once with 5 clients so it keeps working.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BENCH_MODES, formatTable, runBench, type BenchResult } from '../src/bench/bench.ts';
import { runMicro } from '../src/bench/micro.ts';

test('the reconnect-storm benchmark runs every mode and writes its JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');
  const lines: string[] = [];
  const result = await runBench({ clients: 5, json, out: (l) => lines.push(l), timeoutS: 120 });
  assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), JSON.parse(JSON.stringify(result)) as BenchResult);
  assert.equal(result.clients, 5);
  assert.deepEqual(result.runs.map((r) => r.mode), [...BENCH_MODES]);
  for (const r of result.runs) {
    assert.equal(r.error, undefined, `${r.mode}: ${r.error}`);
    assert.equal(r.connected, 5, r.mode);
    assert.ok(r.seconds > 0, r.mode);
  }
  assert.equal(result.runs[0]!.ratio, 1);
  for (const mode of ['hook', 'management'] as const) {
    const r = result.runs.find((x) => x.mode === mode)!;
    assert.equal(r.latencyMs?.events, 5, `${mode}: every connect went through the daemon`);
    assert.ok((r.daemonPeakRssMB ?? 0) > 0);
  }
  assert.match(formatTable(result), /^mode +seconds +ratio/);
  assert.ok(lines.some((l) => l.startsWith('management: starting 5 clients')));
});

test('the microbenchmark measures the codec and the pipeline', async () => {
  const m = await runMicro(0.2);
  assert.ok(m.codecConnectsPerSecond > 100, String(m.codecConnectsPerSecond));
  assert.ok(m.pipelineEventsPerSecond > 100, String(m.pipelineEventsPerSecond));
});

/**
 * The benchmark is not a timed test; this runs it with a few clients so it keeps working: once,
 * repeated over rounds (the ratios checked against the raw runs), with runs that fail, and the
 * ldap-totp mode (a directory login and a one-time code per client).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { BENCH_PIPELINE, DEFAULT_BENCH_MODES, formatTable, runBench, type BenchResult, type BenchRun } from '../src/bench/bench.ts';
import { FLEXSCRIPT, REPO } from '../src/lab/daemon-process.ts';
import { runMicro } from '../src/bench/micro.ts';

test('the reconnect-storm benchmark runs every default mode and writes its JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');
  const lines: string[] = [];
  const result = await runBench({ clients: 5, json, out: (l) => lines.push(l), timeoutS: 120 });
  assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), JSON.parse(JSON.stringify(result)) as BenchResult);
  assert.equal(result.clients, 5);
  assert.deepEqual(
    result.runs.map((r) => r.mode),
    [...DEFAULT_BENCH_MODES],
  );
  for (const r of result.runs) {
    assert.equal(r.error, undefined, `${r.mode}: ${r.error}`);
    assert.equal(r.connected, 5, r.mode);
    assert.ok(r.seconds > 0, r.mode);
  }
  assert.equal(result.runs[0]!.ratio, 1);
  // the root stage was up: the firewall ran through sudo and nft, not left out
  assert.equal(result.pipeline, BENCH_PIPELINE);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('firewall left out')),
    [],
  );
  for (const mode of ['hook', 'management'] as const) {
    const r = result.runs.find((x) => x.mode === mode)!;
    assert.equal(r.latencyMs?.events, 5, `${mode}: every connect went through the daemon`);
    assert.ok((r.daemonPeakRssMB ?? 0) > 0);
    assert.deepEqual(r.checks, { accountingRecords: 5, firewallElements: 5 }, `${mode}: every client recorded and in its firewall set`);
  }
  assert.match(formatTable(result), /^mode +seconds +ratio/);
  assert.ok(lines.some((l) => l.startsWith('management: starting 5 clients')));
});

const round2 = (x: number) => Math.round(x * 100) / 100;
const median2 = (a: number, b: number) => (a + b) / 2;

test('--repeat 2: each mode runs right after a floor run of its own, its ratio is to that floor, the summary takes the median, best and worst round', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');
  const lines: string[] = [];
  const result = await runBench({ clients: 3, repeat: 2, modes: ['sh-noop', 'hook'], json, out: (l) => lines.push(l), timeoutS: 120 });
  const written = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  assert.deepEqual(written, JSON.parse(JSON.stringify(result)) as BenchResult);
  assert.equal(written.repeat, 2);
  // every run kept, in the order it ran, with its round
  const runs = written.runs;
  assert.deepEqual(
    runs.map((r) => [r.round, r.mode, r.floorIndex]),
    [
      [1, 'floor', undefined],
      [1, 'sh-noop', 0],
      [1, 'floor', undefined],
      [1, 'hook', 2],
      [2, 'floor', undefined],
      [2, 'sh-noop', 4],
      [2, 'floor', undefined],
      [2, 'hook', 6],
    ],
  );
  for (const r of runs) {
    assert.equal(r.error, undefined, `round ${r.round} ${r.mode}: ${r.error}`);
    assert.equal(r.connected, 3);
    assert.ok(r.seconds > 0);
  }
  // the arithmetic, from the raw seconds
  const ratio = (r: BenchRun) => round2(r.seconds / runs[r.floorIndex!]!.seconds);
  const exact = (r: BenchRun) => r.seconds / runs[r.floorIndex!]!.seconds;
  for (const r of runs) assert.equal(r.ratio, r.floorIndex === undefined ? 1 : ratio(r), `round ${r.round} ${r.mode}`);
  const of = (round: number, mode: string) => runs.find((r) => r.round === round && r.mode === mode)!;
  assert.deepEqual(
    written.rounds,
    [1, 2].map((round) => ({
      round,
      ratios: { 'sh-noop': ratio(of(round, 'sh-noop')), hook: ratio(of(round, 'hook')) },
      hookToShNoop: round2(exact(of(round, 'hook')) / exact(of(round, 'sh-noop'))),
    })),
  );
  for (const mode of ['sh-noop', 'hook'] as const) {
    const [a, b] = [ratio(of(1, mode)), ratio(of(2, mode))];
    const [s1, s2] = [of(1, mode).seconds, of(2, mode).seconds];
    assert.deepEqual(
      written.summary?.find((m) => m.mode === mode),
      {
        mode,
        runs: 2,
        failed: 0,
        seconds: { median: median2(Math.min(s1, s2), Math.max(s1, s2)), min: Math.min(s1, s2), max: Math.max(s1, s2) },
        ratio: { median: median2(Math.min(a, b), Math.max(a, b)), min: Math.min(a, b), max: Math.max(a, b) },
      },
    );
  }
  const floor = written.summary?.find((m) => m.mode === 'floor');
  assert.equal(floor?.runs, 4);
  const pairs = written.rounds!.map((r) => r.hookToShNoop!);
  assert.deepEqual(written.hookToShNoop, { median: median2(Math.min(...pairs), Math.max(...pairs)), min: Math.min(...pairs), max: Math.max(...pairs) });
  // the hook went through the daemon in both rounds, the firewall through the root stage
  assert.equal(written.pipeline, BENCH_PIPELINE);
  for (const round of [1, 2]) {
    assert.equal(of(round, 'hook').latencyMs?.events, 3);
    assert.deepEqual(of(round, 'hook').checks, { accountingRecords: 3, firewallElements: 3 });
  }
  const table = formatTable(result);
  assert.match(table, /^hook +\d+\.\d\dx +\d+\.\d\dx +\d+\.\d\dx/m);
  assert.match(table, /^hook\/sh-noop +\d/m);
  assert.match(table, new RegExp(`^2 +${of(2, 'sh-noop').ratio.toFixed(2)}x \\(${of(2, 'sh-noop').seconds.toFixed(2)} / `, 'm'));
  assert.ok(lines.some((l) => l.startsWith('round 2/2 hook: starting 3 clients')));
});

test('flexscript bench --repeat exits non-zero when a run fails, and its JSON names the failed runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');
  // management mode holds OpenVPN until the daemon attaches: no client is connected a millisecond in
  const child = spawn(
    process.execPath,
    [FLEXSCRIPT, 'bench', '--clients', '3', '--repeat', '2', '--modes', 'management', '--timeout', '0.001', '--json', json],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += String(c)));
  child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 1, `exit code; stderr: ${stderr}`);
  const written = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
  assert.deepEqual(
    written.runs.map((r) => [r.round, r.mode]),
    [
      [1, 'floor'],
      [1, 'management'],
      [2, 'floor'],
      [2, 'management'],
    ],
  );
  for (const r of written.runs.filter((x) => x.mode === 'management')) assert.match(r.error ?? '', /not connected within 0\.001 s/);
  const management = written.summary?.find((m) => m.mode === 'management');
  assert.equal(management?.failed, 2);
  assert.equal(management?.ratio, undefined, 'a failed run counts in no ratio');
  assert.deepEqual(
    written.rounds?.map((r) => r.ratios),
    [{}, {}],
  );
  assert.match(stdout, /^management +- +- +- +- +- +- +2 +2 FAILED$/m);
  assert.match(stdout, /^round 2 management: 3 clients not connected within 0\.001 s$/m);
});

test('ldap-totp: every client logs in through the directory (search, then bind) with a one-time code, and gets in', {
  skip: existsSync('/usr/sbin/slapd') ? false : 'slapd is not installed',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const result = await runBench({ clients: 6, modes: ['floor', 'ldap-totp'], out: (l) => lines.push(l), timeoutS: 180 });
  assert.deepEqual(
    result.runs.map((r) => r.mode),
    ['floor', 'ldap-totp'],
  );
  const run = result.runs[1]!;
  assert.equal(run.error, undefined, run.error);
  assert.equal(run.connected, 6, 'every client got in');
  // each was admitted by ldap-auth and totp, then went through the rest of the pipeline
  assert.deepEqual(run.checks, { accountingRecords: 6, firewallElements: 6, logins: 6 });
  assert.equal(run.loginLatencyMs?.events, 6);
  assert.equal(run.latencyMs?.events, 6);
  assert.ok(run.ratio > 0);
  assert.ok(
    lines.some((l) => /^ldap-totp: logins \(ldap-auth \+ totp\) p50 [\d.]+ ms, p99 [\d.]+ ms, 6 accepted$/.test(l)),
    lines.join('\n'),
  );
});

test('the microbenchmark measures the codec and the pipeline', async () => {
  const m = await runMicro(0.2);
  assert.ok(m.codecConnectsPerSecond > 100, String(m.codecConnectsPerSecond));
  assert.ok(m.pipelineEventsPerSecond > 100, String(m.pipelineEventsPerSecond));
});

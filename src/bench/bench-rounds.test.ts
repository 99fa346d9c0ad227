import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BenchMode } from './bench-modes.ts';
import { floorRatio, formatRounds, roundPlan, stat, summarizeRounds, type TimedRun } from './bench-rounds.ts';

test('each mode of a round runs right after a floor run of its own, and is measured against it', () => {
  const plan = roundPlan(['floor', 'sh-noop', 'hook', 'hook'], 2);
  assert.deepEqual(
    plan.map((p) => [p.round, p.mode, p.floorIndex]),
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
  assert.deepEqual(
    roundPlan(['floor'], 3).map((p) => [p.round, p.mode]),
    [
      [1, 'floor'],
      [2, 'floor'],
      [3, 'floor'],
    ],
  );
  // the floor runs even when not listed: ratios need it
  assert.deepEqual(
    roundPlan(['management'], 1).map((p) => p.mode),
    ['floor', 'management'],
  );
});

test('median, min and max: the middle value, or the mean of the two middle ones', () => {
  assert.deepEqual(stat([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(stat([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4 });
  assert.equal(stat([]), undefined);
});

/** Runs of a plan with the given seconds, in plan order. */
function runsOf(modes: BenchMode[], repeat: number, seconds: number[], errors: Record<number, string> = {}): TimedRun[] {
  return roundPlan(modes, repeat).map((p, i) => ({ ...p, seconds: seconds[i]!, ...(errors[i] ? { error: errors[i] } : {}) }));
}

test('ratios are to the paired floor; the summary takes each round once; hook/sh-noop divides their ratios', () => {
  // round 1: floor 4, sh-noop 4.4, floor 5, hook 6; round 2: floor 4, sh-noop 4, floor 4, hook 8; round 3: floor 2, sh-noop 2.2, floor 2, hook 2.5
  const runs = runsOf(['sh-noop', 'hook'], 3, [4, 4.4, 5, 6, 4, 4, 4, 8, 2, 2.2, 2, 2.5]);
  assert.deepEqual(
    runs.map((_, i) => floorRatio(runs, i)),
    [1, 1.1, 1, 1.2, 1, 1, 1, 2, 1, 1.1, 1, 1.25],
  );
  const s = summarizeRounds(runs);
  assert.deepEqual(s.rounds, [
    { round: 1, ratios: { 'sh-noop': 1.1, hook: 1.2 }, hookToShNoop: 1.09 },
    { round: 2, ratios: { 'sh-noop': 1, hook: 2 }, hookToShNoop: 2 },
    { round: 3, ratios: { 'sh-noop': 1.1, hook: 1.25 }, hookToShNoop: 1.14 },
  ]);
  assert.deepEqual(s.summary, [
    { mode: 'floor', runs: 6, failed: 0, seconds: { median: 4, min: 2, max: 5 }, ratio: { median: 1, min: 1, max: 1 } },
    { mode: 'sh-noop', runs: 3, failed: 0, seconds: { median: 4, min: 2.2, max: 4.4 }, ratio: { median: 1.1, min: 1, max: 1.1 } },
    { mode: 'hook', runs: 3, failed: 0, seconds: { median: 6, min: 2.5, max: 8 }, ratio: { median: 1.25, min: 1.2, max: 2 } },
  ]);
  assert.deepEqual(s.hookToShNoop, { median: 1.14, min: 1.09, max: 2 });
  const text = formatRounds(5, runs, s);
  assert.match(text, /^hook +1\.25x +1\.20x +2\.00x +6\.00 +2\.50 +8\.00 +3 +0$/m);
  assert.match(text, /^hook\/sh-noop +1\.14x +1\.09x +2\.00x$/m);
  assert.match(text, /^2 +1\.00x \(4\.00 \/ 4\.00 s\) +2\.00x \(8\.00 \/ 4\.00 s\) +2\.00x$/m);
});

test('a failed run, or a failed floor, counts in no ratio and is shown as failed', () => {
  // round 2's hook failed; round 1's floor before management failed
  const runs = runsOf(['hook', 'management'], 2, [4, 5, 0, 4.4, 4, 6, 4, 4.8], { 2: 'OpenVPN exited', 5: '2 clients not connected within 600 s' });
  const s = summarizeRounds(runs);
  assert.deepEqual(s.rounds, [
    { round: 1, ratios: { hook: 1.25 } },
    { round: 2, ratios: { management: 1.2 } },
  ]);
  const hook = s.summary.find((m) => m.mode === 'hook')!;
  assert.deepEqual(hook, { mode: 'hook', runs: 2, failed: 1, seconds: { median: 5, min: 5, max: 5 }, ratio: { median: 1.25, min: 1.25, max: 1.25 } });
  const management = s.summary.find((m) => m.mode === 'management')!;
  assert.deepEqual(management, {
    mode: 'management',
    runs: 2,
    failed: 0,
    seconds: { median: 4.6, min: 4.4, max: 4.8 },
    ratio: { median: 1.2, min: 1.2, max: 1.2 },
  });
  assert.equal(s.summary.find((m) => m.mode === 'floor')!.failed, 1);
  assert.equal(s.hookToShNoop, undefined);
  const text = formatRounds(5, runs, s);
  assert.match(text, /^1 +1\.25x \(5\.00 \/ 4\.00 s\) +FAILED \(floor\)$/m);
  assert.match(text, /^round 2 hook: 2 clients not connected within 600 s$/m);
  assert.match(text, /^hook +.* 1 FAILED$/m);
});

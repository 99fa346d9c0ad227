/**
 * @module bench-rounds
 * The benchmark repeated: the order its runs go in, each run's ratio to the floor it is paired
 * with, and what the rounds add up to (median, best and worst round per mode). Pure: it plans
 * runs and reads their results, and starts nothing.
 *
 * @example
 * roundPlan(['floor', 'hook', 'management'], 2);
 * // round 1: floor, hook, floor, management; round 2: the same
 */
import type { BenchMode } from './bench-modes.ts';

/** One run of a plan: its round (from 1) and, but for a floor run, the index of its floor run. */
export interface PlannedRun {
  readonly round: number;
  readonly mode: BenchMode;
  readonly floorIndex?: number;
}

/** What the summary reads of a run. */
export interface TimedRun {
  readonly mode: BenchMode;
  readonly seconds: number;
  readonly round?: number;
  readonly floorIndex?: number;
  readonly error?: string;
}

export interface BenchStat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface BenchRound {
  readonly round: number;
  /** Each mode's ratio to its floor run, for the modes whose run and floor run both succeeded. */
  readonly ratios: Partial<Record<BenchMode, number>>;
  /** hook's ratio divided by sh-noop's: what a hook costs against a hook that does nothing. */
  readonly hookToShNoop?: number;
}

export interface BenchModeSummary {
  readonly mode: BenchMode;
  readonly runs: number;
  readonly failed: number;
  /** Over the runs that succeeded. */
  readonly seconds?: BenchStat;
  /** Over the rounds where the run and its floor run both succeeded. */
  readonly ratio?: BenchStat;
}

export interface BenchRepeatSummary {
  readonly rounds: BenchRound[];
  readonly summary: BenchModeSummary[];
  readonly hookToShNoop?: BenchStat;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * K rounds; in each, every selected mode but the floor runs right after a floor run of its
 * own, and its ratio is to that floor. When the machine's speed drifts (other load, the CPU's
 * clock, caches warming), the two runs compared are neighbours, the same distance apart for
 * every mode, so the drift between them is the least it can be and no mode gets more of it
 * than another. With one floor per round instead, a round's last mode would sit several runs
 * from its floor and carry all the drift in between, always in the same direction. The floor
 * is the shortest storm, so running it more often costs the least. A mode listed twice runs
 * once a round.
 */
export function roundPlan(modes: readonly BenchMode[], repeat: number): PlannedRun[] {
  const measured = [...new Set(modes)].filter((m) => m !== 'floor');
  const plan: PlannedRun[] = [];
  for (let round = 1; round <= repeat; round++) {
    if (measured.length === 0) plan.push({ round, mode: 'floor' });
    for (const mode of measured) {
      plan.push({ round, mode: 'floor' });
      plan.push({ round, mode, floorIndex: plan.length - 1 });
    }
  }
  return plan;
}

/** A run's ratio to its floor run (1 for a floor run), from the seconds both report. */
export function floorRatio(runs: readonly TimedRun[], index: number): number {
  const run = runs[index]!;
  if (run.floorIndex === undefined) return 1;
  const floor = runs[run.floorIndex]!.seconds;
  return floor > 0 ? round2(run.seconds / floor) : 0;
}

/** The middle value (the mean of the two middle ones for an even count), the least and the most. */
export function stat(values: readonly number[]): BenchStat | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s.at(-1)! };
}

/** Per round and per mode, over the runs of a plan; a failed run (or failed floor) counts in no ratio. */
export function summarizeRounds(runs: readonly TimedRun[]): BenchRepeatSummary {
  const ok = (i: number | undefined) => i !== undefined && !runs[i]!.error;
  const paired = (i: number) => ok(i) && (runs[i]!.floorIndex === undefined || ok(runs[i]!.floorIndex));
  const roundNumbers = [...new Set(runs.map((r) => r.round ?? 1))];
  const rounds = roundNumbers.map((round): BenchRound => {
    const ratios: Partial<Record<BenchMode, number>> = {};
    // unrounded, for hook/sh-noop: each side against its own floor, so neither carries drift
    const exact: Partial<Record<BenchMode, number>> = {};
    runs.forEach((r, i) => {
      if ((r.round ?? 1) !== round || r.floorIndex === undefined || !paired(i)) return;
      ratios[r.mode] = floorRatio(runs, i);
      const floor = runs[r.floorIndex]!.seconds;
      if (floor > 0) exact[r.mode] = r.seconds / floor;
    });
    const hook = exact.hook;
    const noop = exact['sh-noop'];
    return { round, ratios, ...(hook !== undefined && noop ? { hookToShNoop: round2(hook / noop) } : {}) };
  });
  const modes = [...new Set(runs.map((r) => r.mode))];
  const summary = modes.map((mode): BenchModeSummary => {
    const indexes = runs.flatMap((r, i) => (r.mode === mode ? [i] : []));
    const seconds = stat(indexes.filter(ok).map((i) => runs[i]!.seconds));
    const ratio = stat(indexes.filter(paired).map((i) => floorRatio(runs, i)));
    return { mode, runs: indexes.length, failed: indexes.filter((i) => !ok(i)).length, ...(seconds ? { seconds } : {}), ...(ratio ? { ratio } : {}) };
  });
  const hookToShNoop = stat(rounds.flatMap((r) => (r.hookToShNoop === undefined ? [] : [r.hookToShNoop])));
  return { rounds, summary, ...(hookToShNoop ? { hookToShNoop } : {}) };
}

/** Plain aligned columns. */
export function columns(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const x = (n: number) => `${n.toFixed(2)}x`;

/**
 * The repeated benchmark as text: each mode's median ratio over the rounds with the best and
 * the worst round, and the seconds; then every round, each ratio beside the two times it divides.
 */
export function formatRounds(clients: number, runs: readonly TimedRun[], s: BenchRepeatSummary): string {
  const summaryRows = s.summary.map((m) => [
    m.mode,
    m.ratio ? x(m.ratio.median) : '-',
    m.ratio ? x(m.ratio.min) : '-',
    m.ratio ? x(m.ratio.max) : '-',
    m.seconds ? m.seconds.median.toFixed(2) : '-',
    m.seconds ? m.seconds.min.toFixed(2) : '-',
    m.seconds ? m.seconds.max.toFixed(2) : '-',
    String(m.runs),
    m.failed ? `${m.failed} FAILED` : '0',
  ]);
  if (s.hookToShNoop) summaryRows.push(['hook/sh-noop', x(s.hookToShNoop.median), x(s.hookToShNoop.min), x(s.hookToShNoop.max), '', '', '', '', '']);
  const measured = [...new Set(runs.filter((r) => r.floorIndex !== undefined).map((r) => r.mode))];
  const withPair = s.rounds.some((r) => r.hookToShNoop !== undefined);
  const roundRows = s.rounds.map((round) => {
    const cells = measured.map((mode) => {
      const i = runs.findIndex((r) => (r.round ?? 1) === round.round && r.mode === mode && r.floorIndex !== undefined);
      if (i < 0) return '-';
      const run = runs[i]!;
      const floor = runs[run.floorIndex!]!;
      if (run.error || floor.error) return `FAILED (${run.error ? mode : 'floor'})`;
      return `${x(floorRatio(runs, i))} (${run.seconds.toFixed(2)} / ${floor.seconds.toFixed(2)} s)`;
    });
    return [String(round.round), ...cells, ...(withPair ? [round.hookToShNoop === undefined ? '-' : x(round.hookToShNoop)] : [])];
  });
  const failures = runs.flatMap((r) => (r.error ? [`round ${r.round ?? 1} ${r.mode}: ${r.error}`] : []));
  return [
    `${s.rounds.length} rounds of ${clients} clients; each mode's ratio is to the floor run just before it in its round`,
    columns(['mode', 'median', 'min', 'max (worst)', 'seconds median', 'min', 'max', 'runs', 'failed'], summaryRows),
    '',
    columns(['round', ...measured.map((m) => `${m} (s / floor s)`), ...(withPair ? ['hook/sh-noop'] : [])], roundRows),
    ...(failures.length ? ['', ...failures] : []),
  ].join('\n');
}

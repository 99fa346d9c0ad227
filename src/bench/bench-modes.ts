/**
 * @module bench-modes
 * The benchmark's modes, apart from the benchmark itself: the CLI lists them in its help
 * without loading the benchmark (and the lab it starts) into every command.
 */
export const BENCH_MODES = ['floor', 'sh-noop', 'node-per-event', 'hook', 'management', 'management-fast-push'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

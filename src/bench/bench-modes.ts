/**
 * @module bench-modes
 * The benchmark's modes, apart from the benchmark itself: the CLI lists them in its help
 * without loading the benchmark (and the lab it starts) into every command.
 */
export const BENCH_MODES = ['floor', 'sh-noop', 'node-per-event', 'hook', 'management', 'management-fast-push', 'ldap-totp'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/**
 * What runs without `--modes`: the ways of running hooks, for certificate-only clients.
 * `ldap-totp` (management mode with a directory login and a one-time code per client, against
 * a slapd the benchmark starts) measures what a login costs, and runs when asked for.
 */
export const DEFAULT_BENCH_MODES: readonly BenchMode[] = BENCH_MODES.filter((m) => m !== 'ldap-totp');

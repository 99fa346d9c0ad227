/**
 * @module prune
 * `flexscript prune --older-than 180d [--dry-run]`: removes session records that ended, and
 * denials made, before the cutoff, from either store; an open session is never removed. Safe
 * while the daemon runs: the store removes rows in short batches, and the daemon's writes go in
 * between.
 */
import { existsSync } from 'node:fs';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { openStore } from '../store/open-store.ts';
import { EXIT } from './exit-codes.ts';

export interface PruneCommandOptions {
  readonly config: string;
  readonly olderThan: string;
  readonly dryRun?: boolean;
}

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** `180d`, `26w`, `72h` in ms; a number without its unit is refused (days? hours?). */
function parseAge(text: string): number {
  const m = /^(\d+)(h|d|w)$/.exec(text.trim());
  if (!m || Number(m[1]) === 0)
    throw new Error(`--older-than ${JSON.stringify(text)}: give an age above zero with its unit, e.g. 180d (days), 26w (weeks) or 72h (hours)`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export async function pruneCommand(o: PruneCommandOptions, now = Date.now()): Promise<number> {
  let age: number;
  try {
    age = parseAge(o.olderThan);
  } catch (err) {
    process.stderr.write(`flexscript prune: ${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  try {
    const { config } = await loadConfig(o.config);
    if (!config.store) throw new Error(`${o.config} has no store: section; there is nothing to prune`);
    // never create a store: run as root, a new file would lock the daemon out
    if (config.store.sqlite !== undefined && !existsSync(config.store.sqlite)) throw new Error(`no store at ${config.store.sqlite}`);
    const store = await openStore(config.store, createLogger('silent'));
    const before = now - age;
    try {
      const n = await store.prune(before, { dryRun: o.dryRun ?? false });
      process.stdout.write(
        `${o.dryRun ? 'would remove' : 'removed'} ${plural(n.sessions, 'session record')} that ended and ${plural(n.denials, 'denial')} made before ${new Date(before).toISOString()} (older than ${o.olderThan}); open sessions are kept\n`,
      );
    } finally {
      await store.close();
    }
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`flexscript prune: ${err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err)}\n`);
    return err instanceof ConfigError ? EXIT.config : EXIT.failure;
  }
}

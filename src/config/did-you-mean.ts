/**
 * @module did-you-mean
 * For an unknown key, the key the schema knows at that place that is nearest to it: a typo in a
 * config (`timout`, `status_file`) gets its fix in the message.
 */
import type { z } from 'zod';

type Schema = z.core.$ZodType;

/** The schema at `path` inside `schema`, looking through optional, default, pipe, array, record. */
function schemaAt(schema: Schema | undefined, path: readonly PropertyKey[]): Schema | undefined {
  let s = schema;
  for (let i = 0; s !== undefined; ) {
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault' || def.type === 'readonly') {
      s = def.innerType as Schema;
    } else if (def.type === 'pipe') {
      s = def.in as Schema;
    } else if (i === path.length) {
      return s;
    } else if (def.type === 'object') {
      s = (def.shape as Record<string, Schema>)[String(path[i++])];
    } else if (def.type === 'array') {
      s = def.element as Schema;
      i++;
    } else if (def.type === 'record') {
      s = def.valueType as Schema;
      i++;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** The keys of the object schema at `path` (every branch of a union), or none. */
export function knownKeys(schema: Schema | undefined, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(schema, path);
  if (!s) return [];
  const def = s._zod.def as unknown as { type: string; shape?: Record<string, unknown>; options?: Schema[] };
  if (def.type === 'object' && def.shape) return Object.keys(def.shape);
  if (def.type === 'union' && def.options) return def.options.flatMap((o) => knownKeys(o, []));
  return [];
}

/** Levenshtein distance, `-` and `_` counted as the same. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase().replace(/_/g, '-');
  const y = b.toLowerCase().replace(/_/g, '-');
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const next = [i];
    for (let j = 1; j <= y.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    row = next;
  }
  return row[y.length]!;
}

/** The nearest known key within a small edit distance (at most 2, and under a third of its length), if any. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  if (key.length > 64) return undefined;
  let best: { key: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(key, k);
    if (d <= 2 && d <= Math.ceil(k.length / 3) && (!best || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

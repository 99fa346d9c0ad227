/**
 * @module duration
 * The duration schema of config files and plugin options: `500ms`, `2s`, `1m`, or a number of
 * milliseconds, between 1 ms and 1 h; parsed to milliseconds.
 */
import { z } from 'zod';

/** `500ms`, `2s`, `1m`, or a number of milliseconds. */
export const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m)$/, 'expected a duration such as 500ms, 5s or 1m')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const n = Number.parseInt(v, 10);
    return v.endsWith('ms') ? n : v.endsWith('s') ? n * 1000 : n * 60_000;
  })
  .refine((ms) => ms > 0 && ms <= 3_600_000, 'must be between 1ms and 1h');

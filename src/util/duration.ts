/**
 * @module duration
 * The duration schema of config files and plugin options: a whole number with its unit, `500ms`,
 * `2s` or `1m`, between 1 ms and 1 h; parsed to milliseconds. A bare number is an error, never
 * guessed: `timeout: 2` could mean 2 ms or 2 s, and either guess breaks a server silently.
 */
import { z } from 'zod';

const EXPECTED = 'expected a duration such as 500ms, 5s or 1m';

/** `500ms`, `2s` or `1m`; a number without its unit is refused with the fix. */
export const duration = z
  .unknown()
  .transform((v, ctx) => {
    const text = typeof v === 'number' || typeof v === 'string' ? String(v).trim() : '';
    if (/^\d+$/.test(text)) {
      ctx.issues.push({ code: 'custom', input: v, message: `a duration needs its unit: write ${text}s for ${text} seconds (or ${text}ms, ${text}m)` });
      return z.NEVER;
    }
    const m = /^(\d+)(ms|s|m)$/.exec(text);
    if (!m) {
      ctx.issues.push({ code: 'custom', input: v, message: EXPECTED });
      return z.NEVER;
    }
    const n = Number(m[1]);
    return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
  })
  .refine((ms) => ms > 0 && ms <= 3_600_000, 'must be between 1ms and 1h');

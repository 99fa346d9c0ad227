/**
 * @module login-limits
 * The options the plugins that check credentials share (password-auth, ldap-auth, totp): failed
 * logins limited per user and per source address, with the same defaults everywhere, and the one
 * reason a refused client is told.
 */
import type { z as Zod } from 'zod';
import { duration } from './duration.ts';
import type { RateLimitOptions } from './rate-limit.ts';

export type LimitOptions = { failures: number; window: number; lockout: number; 'max-lockout': number; 'max-keys': number };

const USER_LIMITS: LimitOptions = { failures: 5, window: 15 * 60_000, lockout: 60_000, 'max-lockout': 3_600_000, 'max-keys': 100_000 };
// several users may share an address (NAT): more room than per user
const ADDRESS_LIMITS: LimitOptions = { ...USER_LIMITS, failures: 20 };

function limitSchema(z: typeof Zod, d: LimitOptions) {
  return z
    .object({
      /** Failures allowed in a burst before the first lockout. */
      failures: z.number().int().min(1).max(1000).default(d.failures),
      /** Time for the allowance to refill completely. */
      window: duration.default(d.window),
      /** First lockout; each further one doubles, up to max-lockout. */
      lockout: duration.default(d.lockout),
      'max-lockout': duration.default(d['max-lockout']),
      /** Keys remembered at most (memory stays bounded under a flood of random names). */
      'max-keys': z.number().int().min(100).max(10_000_000).default(d['max-keys']),
    })
    .strict()
    .refine((l) => l['max-lockout'] >= l.lockout, { message: 'max-lockout must not be shorter than lockout', path: ['max-lockout'] })
    .default({ ...d });
}

/** `limits: { user: {...}, address: {...} }`, every field with its default. */
export function loginLimitsSchema(z: typeof Zod) {
  return z
    .object({
      user: limitSchema(z, USER_LIMITS),
      address: limitSchema(z, ADDRESS_LIMITS),
    })
    .strict()
    .default({ user: USER_LIMITS, address: ADDRESS_LIMITS });
}

/** What a refused client is told, whatever the reason: one line, so no reason tells a guesser which part was wrong. */
export function clientReasonSchema(z: typeof Zod) {
  return z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\r\n]*$/, 'one line')
    .default('authentication failed');
}

export function limiterOptions(l: LimitOptions): RateLimitOptions {
  return { failures: l.failures, window: l.window, lockout: l.lockout, maxLockout: l['max-lockout'], maxKeys: l['max-keys'] };
}

/**
 * @module password-auth
 * Built-in plugin `password-auth`: checks a client's username and password against a users
 * file (argon2id hashes from `flexscript passwd`, bcrypt hashes from `htpasswd -B`), with
 * failures limited per user and per source address.
 *
 * The log gets the reason (wrong password, unknown user, locked out); the client gets only
 * `clientReason`, so it cannot tell an unknown user from a wrong password. An unknown user's
 * password is checked against a dummy hash of the same cost, so timing does not tell either.
 * The password itself is never logged or kept.
 *
 * The users file is re-read when it changes (checked before each login), and at every reload
 * (SIGHUP); a bad new version is logged and the previous one stays in use.
 *
 * @example
 * plugins:
 *   - use: password-auth
 *     options:
 *       file: /etc/flexscript/users      # relative paths: from the config's folder
 *       groups: [vpn]                    # optional: only users in one of these groups
 *       limits:
 *         user: { failures: 5, window: 15m, lockout: 1m, max-lockout: 1h }
 *         address: { failures: 20, window: 15m, lockout: 1m, max-lockout: 1h }
 */
import { resolve } from 'node:path';
import type { z as Zod } from 'zod';
import { duration } from '../../../util/duration.ts';
import { addressKey, RateLimiter, type RateLimitOptions } from '../../../util/rate-limit.ts';
import { argon2Params, UsersFile, type UserEntry } from './users-file.ts';
import { dummyHashLike, verifyPassword } from './verify.ts';
import type { PluginDefinition } from '../../plugin-api.ts';

type LimitOptions = { failures: number; window: number; lockout: number; 'max-lockout': number; 'max-keys': number };

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

interface PasswordAuthOptions {
  readonly file: string;
  readonly groups?: readonly string[];
  readonly 'client-reason': string;
  readonly limits: { readonly user: LimitOptions; readonly address: LimitOptions };
}

function limiterOptions(l: LimitOptions): RateLimitOptions {
  return { failures: l.failures, window: l.window, lockout: l.lockout, maxLockout: l['max-lockout'], maxKeys: l['max-keys'] };
}

/** The hash most users have: an unknown user's dummy check should cost what theirs costs. */
function typicalHash(users: UsersFile): UserEntry | undefined {
  const counts = new Map<string, { n: number; entry: UserEntry }>();
  for (const e of users.entries()) {
    const a = e.kind === 'argon2id' ? argon2Params(e.hash) : undefined;
    const cost = a ? `argon2id m=${a.m} t=${a.t} p=${a.p}` : e.hash.slice(0, 7);
    const c = counts.get(cost) ?? { n: 0, entry: e };
    c.n++;
    counts.set(cost, c);
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.entry;
}

const passwordAuth: PluginDefinition<PasswordAuthOptions> = {
  name: 'password-auth',
  options: (z) =>
    z
      .object({
        /** The users file: `user:hash[:groups]` lines. */
        file: z.string().min(1),
        /** Only users in one of these groups may log in (from the third field of their line). */
        groups: z
          .array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only'))
          .min(1)
          .optional(),
        /** What a refused client is told, whatever the reason. */
        'client-reason': z
          .string()
          .min(1)
          .max(200)
          .regex(/^[^\r\n]*$/, 'one line')
          .default('authentication failed'),
        limits: z
          .object({
            user: limitSchema(z, USER_LIMITS),
            address: limitSchema(z, ADDRESS_LIMITS),
          })
          .strict()
          .default({ user: USER_LIMITS, address: ADDRESS_LIMITS }),
      })
      .strict(),

  async setup({ options, log, configDir }) {
    let dummy: Promise<string>;
    const users = await UsersFile.load(resolve(configDir, options.file), {
      onError: (err) => log.error({ err: err.message }, 'users file not reloaded; the previous version stays in use'),
      onReload: (n) => {
        log.info({ file: users.path, users: n }, 'users file reloaded');
        dummy = dummyHashLike(typicalHash(users));
      },
    });
    dummy = dummyHashLike(typicalHash(users));
    await dummy;
    if (users.worldReadable()) log.warn({ file: users.path }, 'users file is readable by every user: make it 0640 (owner root, group of the daemon)');
    log.info({ file: users.path, users: users.size }, 'users file loaded');
    const byUser = new RateLimiter(limiterOptions(options.limits.user));
    const byAddress = new RateLimiter(limiterOptions(options.limits.address));
    const allowed = options.groups ? new Set(options.groups) : undefined;

    return {
      // a username this plugin lets through is the client's identity from client-connect on
      verifiesUsernames: true,
      'user-pass-verify': async (event, ctx) => {
        const generic = options['client-reason'];
        const userKey = event.username;
        const where = event.realAddress === undefined ? '(unknown address)' : addressKey(event.realAddress);
        // locked keys are refused before any hashing: a flood costs no CPU
        for (const [what, limiter, key] of [
          ['user', byUser, userKey],
          ['address', byAddress, where],
        ] as const) {
          const c = limiter.check(key);
          if (c.locked) return ctx.deny(`${what} locked out after repeated failures (${Math.ceil(c.retryAfterMs / 1000)} s left)`, generic);
        }
        await users.refresh();
        const entry = users.get(event.username);
        const matches = await verifyPassword(entry?.hash ?? (await dummy), event.password);
        if (!entry || !matches) {
          const lockedUser = byUser.failure(userKey);
          const lockedAddress = byAddress.failure(where);
          const lock = [lockedUser && `user locked out for ${lockedUser / 1000} s`, lockedAddress && `address locked out for ${lockedAddress / 1000} s`].filter(
            Boolean,
          );
          return ctx.deny([entry ? 'wrong password' : 'unknown user', ...lock].join('; '), generic);
        }
        byUser.success(userKey);
        if (allowed && !entry.groups.some((g) => allowed.has(g)))
          return ctx.deny(`user is in none of the allowed groups (${[...allowed].join(', ')})`, generic);
      },
    };
  },
};

export default passwordAuth;

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
 * A user's groups (the third field of the line, `alice:HASH:vpn-admins,staff`) become the
 * client's groups (`session.groups`), which firewall, client-config, routes and session-limit
 * match on.
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
import { type LimitOptions, clientReasonSchema, limiterOptions, loginLimitsSchema } from '../../../util/login-limits.ts';
import { addressKey, RateLimiter } from '../../../util/rate-limit.ts';
import { argon2Params } from '../../../util/hash-format.ts';
import { dummyHashLike, verifyPassword } from '../../../util/password-hash.ts';
import { UsersFile, type UserEntry } from './users-file.ts';
import type { PluginDefinition } from '../../plugin-api.ts';

interface PasswordAuthOptions {
  readonly file: string;
  readonly groups?: readonly string[];
  readonly 'client-reason': string;
  readonly limits: { readonly user: LimitOptions; readonly address: LimitOptions };
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
        'client-reason': clientReasonSchema(z),
        limits: loginLimitsSchema(z),
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
        // the groups of the user's line are the client's, none included: every plugin matching on groups sees them
        ctx.addGroups(...entry.groups);
      },
    };
  },
};

export default passwordAuth;

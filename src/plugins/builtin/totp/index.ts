/**
 * @module totp
 * Built-in plugin `totp`: a second factor (RFC 6238 one-time codes) after any password plugin.
 * Put it after the password plugin: it runs only for clients whose password was accepted.
 *
 * The code comes with the password (OpenVPN's static challenge, `SCRV1:...`) or as the answer to
 * a challenge; the core splits it off the password (`event.challengeResponse`), so the password
 * plugin sees the password alone. A response the client sent is always checked. `mode` says what
 * happens when it sent none:
 * - `static`: denied (the client config needs `static-challenge`);
 * - `crv1`: denied with a CRV1 challenge; the client asks the user and connects again with the
 *   answer, bound to this username and valid for `challenge-expiry`;
 * - `dynamic`: the client is asked while it waits (`CR_TEXT`), and its answer comes back
 *   (management `>CLIENT:CR_RESPONSE`, or hook mode's client-crresponse hook).
 *
 * Each code is accepted once per user; wrong codes count against the same kind of limits as
 * password-auth (per user and per address), and a locked key is refused without checking.
 *
 * @example
 * plugins:
 *   - use: password-auth
 *     options: { file: /etc/flexscript/users }
 *   - use: totp
 *     options:
 *       file: /etc/flexscript/totp-secrets   # `flexscript totp enroll USER --file ...`
 *       mode: static
 */
import { resolve } from 'node:path';
import { sealChallengeState } from '../../../util/challenge-state.ts';
import { duration } from '../../../util/duration.ts';
import { type LimitOptions, clientReasonSchema, limiterOptions, loginLimitsSchema } from '../../../util/login-limits.ts';
import { addressKey, RateLimiter } from '../../../util/rate-limit.ts';
import { matchingStep, ReplayGuard } from './codes.ts';
import { SecretsFile } from './secrets-file.ts';
import type { PluginDefinition } from '../../plugin-api.ts';

export type TotpMode = 'static' | 'crv1' | 'dynamic';

interface TotpOptions {
  readonly file: string;
  readonly mode: TotpMode;
  readonly window: number;
  readonly 'challenge-text': string;
  readonly 'challenge-timeout': number;
  readonly 'challenge-expiry': number;
  readonly unenrolled: 'deny' | 'allow';
  readonly 'client-reason': string;
  readonly limits: { readonly user: LimitOptions; readonly address: LimitOptions };
}

const limiter = (l: LimitOptions) => new RateLimiter(limiterOptions(l));

/** OpenVPN's management interface takes at most 255 bytes in one argument (the client reason), quotes included. */
const MAX_CRV1_BYTES = 253;

const totp: PluginDefinition<TotpOptions> = {
  name: 'totp',
  options: (z) =>
    z
      .object({
        /** The secrets file: `user:BASE32SECRET` lines. */
        file: z.string().min(1),
        /** How to ask a client that sent no code with its password. */
        mode: z.enum(['static', 'crv1', 'dynamic']).default('static'),
        /** Steps of 30 s accepted before and after now (clock drift). */
        window: z.number().int().min(0).max(10).default(1),
        /** What the user is asked (crv1, dynamic). */
        'challenge-text': z
          .string()
          .min(1)
          .max(100)
          .regex(/^[^\r\n:"\\]*$/, 'one line without : " or \\')
          .default('Enter your authenticator code'),
        /** dynamic: how long the client has to answer. */
        'challenge-timeout': duration.default(60_000),
        /** crv1: how long a challenge can be answered. */
        'challenge-expiry': duration.default(120_000),
        /** A user with no secret in the file: refused, or let through on the password alone. */
        unenrolled: z.enum(['deny', 'allow']).default('deny'),
        'client-reason': clientReasonSchema(z),
        limits: loginLimitsSchema(z),
      })
      .strict()
      .refine((o) => o['challenge-timeout'] >= 5_000 && o['challenge-timeout'] <= 600_000, {
        message: 'challenge-timeout must be 5 s to 10 min',
        path: ['challenge-timeout'],
      }),

  async setup({ options, log, configDir }) {
    const secrets = await SecretsFile.load(resolve(configDir, options.file), {
      onError: (err) => log.error({ err: err.message }, 'TOTP secrets file not reloaded; the previous version stays in use'),
      onReload: (n) => log.info({ file: secrets.path, users: n }, 'TOTP secrets file reloaded'),
    });
    log.info({ file: secrets.path, users: secrets.size, mode: options.mode }, 'TOTP secrets file loaded');
    const byUser = limiter(options.limits.user);
    const byAddress = limiter(options.limits.address);
    const replay = new ReplayGuard(options.window);
    const generic = options['client-reason'];
    const text = options['challenge-text'];

    return {
      'user-pass-verify': async (event, ctx) => {
        const user = event.username;
        const where = event.realAddress === undefined ? '(unknown address)' : addressKey(event.realAddress);
        await secrets.refresh();
        const secret = secrets.get(user);
        if (secret === undefined) {
          if (options.unenrolled === 'allow') return;
          return ctx.deny('no TOTP secret enrolled for this user', generic);
        }
        for (const [what, l, key] of [
          ['user', byUser, user],
          ['address', byAddress, where],
        ] as const) {
          const c = l.check(key);
          if (c.locked) return ctx.deny(`TOTP: ${what} locked out after repeated wrong codes (${Math.ceil(c.retryAfterMs / 1000)} s left)`, generic);
        }

        let code: string;
        const sent = event.challengeResponse;
        if (sent?.kind === 'crv1' && sent.problem) return ctx.deny(`TOTP: CRV1 answer refused (${sent.problem})`, generic);
        if (sent) code = sent.response;
        else if (options.mode === 'static') return ctx.deny('TOTP: no code sent (the client config needs static-challenge)', generic);
        else if (options.mode === 'crv1') {
          const state = sealChallengeState({ username: user, password: event.password, expires: Date.now() + options['challenge-expiry'] });
          const challenge = `CRV1:R,E:${state}:${Buffer.from(user).toString('base64')}:${text}`;
          if (event.source === 'management' && Buffer.byteLength(challenge) > MAX_CRV1_BYTES)
            return ctx.deny('TOTP: the CRV1 challenge for this username and password is too long for OpenVPN', generic);
          return ctx.deny('TOTP: CRV1 challenge sent', challenge);
        } else {
          try {
            code = await ctx.challenge({ text, timeout: Math.round(options['challenge-timeout'] / 1000) });
          } catch (err) {
            return ctx.deny(`TOTP: no answer to the challenge (${err instanceof Error ? err.message : String(err)})`, generic);
          }
        }

        const now = Date.now();
        // apps show codes as "123 456"
        const step = matchingStep(secret, code.replace(/\s+/g, ''), now, options.window);
        if (step === undefined || !replay.take(user, step, now)) {
          const lockedUser = byUser.failure(user);
          const lockedAddress = byAddress.failure(where);
          const lock = [lockedUser && `user locked out for ${lockedUser / 1000} s`, lockedAddress && `address locked out for ${lockedAddress / 1000} s`].filter(
            Boolean,
          );
          return ctx.deny([step === undefined ? 'TOTP: wrong code' : 'TOTP: code already used', ...lock].join('; '), generic);
        }
        byUser.success(user);
      },
    };
  },
};

export default totp;

/**
 * @module password-hash
 * Password hashing and checking that never blocks the event loop: argon2 runs in libuv's
 * thread pool (native), bcrypt in worker threads (see bcrypt-pool). The comparison of the
 * computed and stored hash is constant-time inside both libraries; we compare nothing ourselves.
 */
import { randomBytes } from 'node:crypto';
import * as argon2 from 'argon2';
import { BcryptPool } from './bcrypt-pool.ts';
import { argon2Params, classifyHash, type HashKind } from './hash-format.ts';

/**
 * argon2id parameters of new hashes: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
 * Cheap enough that a reconnect storm of hundreds of password clients stays in seconds on
 * two cores, costly enough to make offline guessing slow.
 */
const ARGON2_PARAMS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Longer passwords are refused without hashing: nobody types them, and they cost CPU. */
export const MAX_PASSWORD_BYTES = 1024;

/** Shared by every users file; its workers start at the first bcrypt check and idle unreferenced. */
const bcrypt = new BcryptPool();

export async function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_PARAMS);
}

/** True when `password` matches `hash` (argon2id or bcrypt); false for any other hash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return false;
  const kind = classifyHash(hash);
  if ('problem' in kind) return false;
  try {
    return kind.kind === 'argon2id' ? await argon2.verify(hash, password) : await bcrypt.compare(password, hash);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password with the same algorithm and cost as `like`. Checking an unknown
 * user's password against it takes as long as checking a real user's, so the answer time does
 * not tell whether a user exists.
 */
export async function dummyHashLike(like: { hash: string; kind: HashKind } | undefined): Promise<string> {
  const secret = randomBytes(18).toString('base64');
  if (like?.kind === 'bcrypt') {
    const cost = Number(like.hash.slice(4, 6));
    return bcrypt.hash(secret, cost);
  }
  if (like?.kind === 'argon2id') {
    const { m, t, p } = argon2Params(like.hash)!;
    return argon2.hash(secret, { type: argon2.argon2id, memoryCost: m, timeCost: t, parallelism: p });
  }
  return hashPassword(secret);
}

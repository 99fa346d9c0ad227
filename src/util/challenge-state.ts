/**
 * @module challenge-state
 * The state id of an OpenVPN CRV1 challenge (`CRV1:R,E:<state id>:<user>:<text>` in a deny,
 * answered on the next connect with the password `CRV1::<state id>::<response>`). The next
 * connect carries no password, so the state id carries it, sealed (AES-256-GCM) with a key that
 * exists only in this daemon's memory, together with the username and an expiry: the password
 * plugin checks the password again on the answer, and nothing is kept between the two connects.
 * A restart makes outstanding challenges invalid (the client is asked again). The id is
 * base64url text: no `:` and nothing OpenVPN or a shell would read.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const KEY = randomBytes(32);
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Longest state id opened: a client's text beyond this is not worth decrypting. */
const MAX_STATE_CHARS = 2048;

export interface ChallengeState {
  readonly username: string;
  readonly password: string;
  /** Unix ms after which the state is refused. */
  readonly expires: number;
}

/** Seals a state into an id for a CRV1 challenge. */
export function sealChallengeState(state: ChallengeState): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', KEY, iv);
  const plain = Buffer.from(JSON.stringify([state.expires, state.username, state.password]));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export type OpenedState = { readonly ok: true; readonly state: ChallengeState } | { readonly ok: false; readonly problem: 'unknown state' | 'expired' };

/** Opens a state id a client sent back; anything this daemon did not seal is `unknown state`. */
export function openChallengeState(id: string, now = Date.now()): OpenedState {
  if (id.length > MAX_STATE_CHARS || !/^[A-Za-z0-9_-]+$/.test(id)) return { ok: false, problem: 'unknown state' };
  const raw = Buffer.from(id, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return { ok: false, problem: 'unknown state' };
  try {
    const decipher = createDecipheriv('aes-256-gcm', KEY, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    const [expires, username, password] = JSON.parse(plain.toString('utf8')) as [number, string, string];
    if (expires <= now) return { ok: false, problem: 'expired' };
    return { ok: true, state: { username, password, expires } };
  } catch {
    return { ok: false, problem: 'unknown state' };
  }
}

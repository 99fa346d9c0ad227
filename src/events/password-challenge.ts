/**
 * @module password-challenge
 * Reads a second factor out of the password a client sent, so any password plugin sees the
 * password alone and a second-factor plugin sees the response:
 *
 * - static challenge (`static-challenge` in the client config): `SCRV1:base64(password):base64(response)`;
 * - the answer to a CRV1 challenge: `CRV1::<state id>::<response>`, where the state id is one this
 *   daemon sealed (util/challenge-state.ts) with the password of the connect it challenged, for
 *   the same username and not yet expired. Otherwise the password is empty (a password plugin
 *   denies) and the response says why the state was refused.
 *
 * A password that only looks like either (bad base64, text that is not UTF-8, a NUL, a missing
 * field) is taken as a plain password, as OpenVPN took it: a second-factor plugin then finds no
 * response and denies.
 */
import { openChallengeState } from '../util/challenge-state.ts';

export type ChallengeResponse =
  | { readonly kind: 'static'; readonly response: string }
  | {
      readonly kind: 'crv1';
      readonly stateId: string;
      readonly response: string;
      /** Why the state id was refused; absent when it was sealed here, for this username, and is current. */
      readonly problem?: 'unknown state' | 'expired' | 'other username';
    };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict base64 of UTF-8 text without NUL, or undefined. */
export function base64Text(value: string): string | undefined {
  if (!BASE64.test(value)) return undefined;
  try {
    const text = utf8.decode(Buffer.from(value, 'base64'));
    return text.includes('\0') ? undefined : text;
  } catch {
    return undefined;
  }
}

export interface DecodedPassword {
  readonly password: string;
  readonly challengeResponse?: ChallengeResponse;
}

/** Splits a second factor off a client's password (see the module comment). */
export function decodePassword(username: string, password: string, now = Date.now()): DecodedPassword {
  if (password.startsWith('SCRV1:')) {
    const parts = password.split(':');
    if (parts.length !== 3) return { password };
    const [, pw = '', response = ''] = parts;
    const plain = base64Text(pw);
    const answer = base64Text(response);
    if (plain === undefined || answer === undefined) return { password };
    return { password: plain, challengeResponse: { kind: 'static', response: answer } };
  }
  const crv1 = /^CRV1::([^:]+)::(.*)$/s.exec(password);
  if (crv1) {
    const stateId = crv1[1]!;
    const response = crv1[2]!;
    const opened = openChallengeState(stateId, now);
    if (!opened.ok) return { password: '', challengeResponse: { kind: 'crv1', stateId, response, problem: opened.problem } };
    if (opened.state.username !== username) return { password: '', challengeResponse: { kind: 'crv1', stateId, response, problem: 'other username' } };
    return { password: opened.state.password, challengeResponse: { kind: 'crv1', stateId, response } };
  }
  return { password };
}

/**
 * @module hash-format
 * The password hashes a users file may hold (password-auth's, the console's): argon2id
 * (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`, what `flexscript passwd` writes) and bcrypt
 * (`$2y$`, `$2b$`, `$2a$`, what `htpasswd -B` writes), with limits on their cost. Pure.
 */

export type HashKind = 'argon2id' | 'bcrypt';

// Limits keep an operator's typo (m=40000000) from taking the daemon's memory or minutes of CPU.
// parameters come in either order: the reference tool writes m,t,p and node's argon2 m,p,t
const ARGON2ID = /^\$argon2id\$v=19\$([a-z=0-9,]{1,40})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$/;
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const MAX_ARGON2_MEMORY_KIB = 1024 * 1024;
const MAX_ARGON2_TIME = 64;
const MAX_BCRYPT_COST = 15;

/** The cost parameters of an argon2id hash (`m=...,t=...,p=...` in any order), if well-formed. */
export function argon2Params(hash: string): { m: number; t: number; p: number } | undefined {
  const field = /^\$argon2id\$v=19\$([^$]*)\$/.exec(hash)?.[1];
  if (field === undefined) return undefined;
  const seen = new Map<string, number>();
  for (const part of field.split(',')) {
    const kv = /^([mtp])=(\d{1,8})$/.exec(part);
    if (!kv || seen.has(kv[1]!)) return undefined;
    seen.set(kv[1]!, Number(kv[2]));
  }
  const [m, t, p] = [seen.get('m'), seen.get('t'), seen.get('p')];
  return m === undefined || t === undefined || p === undefined ? undefined : { m, t, p };
}

/** Which kind of hash this is, or why it is refused (the message never contains the hash). */
export function classifyHash(hash: string): { kind: HashKind } | { problem: string } {
  const a = ARGON2ID.exec(hash);
  if (a) {
    const params = argon2Params(hash);
    if (!params) return { problem: 'malformed argon2id parameters: expected m=, t= and p= once each' };
    const { m, t, p } = params;
    if (m < 8 * p || m > MAX_ARGON2_MEMORY_KIB) return { problem: `argon2id memory cost m=${m} is outside 8*p..${MAX_ARGON2_MEMORY_KIB} KiB` };
    if (t < 1 || t > MAX_ARGON2_TIME) return { problem: `argon2id time cost t=${t} is outside 1..${MAX_ARGON2_TIME}` };
    if (p < 1) return { problem: 'argon2id parallelism p=0' };
    return { kind: 'argon2id' };
  }
  const b = BCRYPT.exec(hash);
  if (b) {
    const cost = Number(b[1]);
    if (cost < 4 || cost > MAX_BCRYPT_COST) return { problem: `bcrypt cost ${cost} is outside 4..${MAX_BCRYPT_COST}` };
    return { kind: 'bcrypt' };
  }
  if (hash.startsWith('$argon2')) return { problem: 'unsupported argon2 hash: only argon2id version 19 ($argon2id$v=19$...) is accepted' };
  if (hash.startsWith('$2')) return { problem: 'malformed bcrypt hash' };
  return { problem: 'unsupported hash: expected argon2id ($argon2id$..., made by flexscript passwd) or bcrypt ($2y$/$2b$/$2a$, made by htpasswd -B)' };
}

/**
 * @module system-accounts
 * Users and groups from /etc/passwd and /etc/group (Node has no getpwnam or getgrnam). One
 * parser for each file, with one set of rules: blank lines, `#` comments and malformed lines
 * (a wrong number of fields, an id that is not a decimal number, NIS `+`/`-` entries) are
 * skipped; a member list may be empty or end in a comma. A name is looked up first; a name
 * made of digits only and not found is taken as the id itself, as chown(1) does.
 */
import { readFileSync } from 'node:fs';

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const ID = /^\d{1,10}$/;

/** The fields of each well-formed line: `fields` colon-separated values, the first a plain name. */
function records(text: string, minFields: number, maxFields: number): string[][] {
  const out: string[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const name = fields[0]!;
    if (fields.length < minFields || fields.length > maxFields || name === '' || name.startsWith('+') || name.startsWith('-')) continue;
    out.push(fields);
  }
  return out;
}

/** The groups of an /etc/group text (`name:password:gid:member,member`). */
export function parseGroupFile(text: string): GroupEntry[] {
  return records(text, 3, 4)
    .filter((f) => ID.test(f[2]!))
    .map(([name, , gid, members]) => ({ name: name!, gid: Number(gid), members: (members ?? '').split(',').filter((m) => m !== '') }));
}

/** The users of an /etc/passwd text (`name:password:uid:gid:gecos:home:shell`; the last three may be left off). */
export function parsePasswdFile(text: string): UserEntry[] {
  return records(text, 4, 7)
    .filter((f) => ID.test(f[2]!) && ID.test(f[3]!))
    .map(([name, , uid, gid]) => ({ name: name!, uid: Number(uid), gid: Number(gid) }));
}

/** A file's text; a missing file has no entries. */
function readAccounts(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

const numeric = (name: string) => (ID.test(name) ? Number(name) : undefined);

/** The gid of a group name (or of a number given as one), or undefined. */
export function groupIdOf(name: string, file = '/etc/group'): number | undefined {
  return parseGroupFile(readAccounts(file)).find((g) => g.name === name)?.gid ?? numeric(name);
}

/** The uid of a user name (or of a number given as one), or undefined. */
export function userIdOf(name: string, file = '/etc/passwd'): number | undefined {
  return parsePasswdFile(readAccounts(file)).find((u) => u.name === name)?.uid ?? numeric(name);
}

/** The name of a uid, or undefined when no user has it. */
export function userNameOf(uid: number, file = '/etc/passwd'): string | undefined {
  return parsePasswdFile(readAccounts(file)).find((u) => u.uid === uid)?.name;
}

/**
 * @module console-users
 * The console's users file: `name:hash:role` lines, `#` comments and blank lines. The hashes are
 * password-auth's (argon2id from `flexscript passwd`, bcrypt from `htpasswd -B`), checked by the
 * same code (src/util/password-hash.ts); the role is `viewer` (looks) or `operator` (may also
 * disconnect clients). `flexscript passwd NAME --file FILE --groups operator` writes such a line.
 * The file is read again when it changes; a bad new version keeps the last good one.
 */
import { readFile, stat } from 'node:fs/promises';
import { classifyHash } from '../util/hash-format.ts';
import { dummyHashLike, verifyPassword } from '../util/password-hash.ts';

export type Role = 'viewer' | 'operator';

interface ConsoleUser {
  readonly name: string;
  readonly hash: string;
  readonly role: Role;
}

/** Parses the file's text; throws naming the line (never the hash) at the first bad one. */
export function parseConsoleUsers(text: string, file: string): Map<string, ConsoleUser> {
  const users = new Map<string, ConsoleUser>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const [name = '', hash = '', role = '', ...rest] = line.split(':');
    if (rest.length > 0 || name === '') throw new Error(`${where}: expected name:hash:role`);
    const kind = classifyHash(hash);
    if ('problem' in kind) throw new Error(`${where}: ${kind.problem}`);
    if (role !== 'viewer' && role !== 'operator') throw new Error(`${where}: the role (third field) is viewer or operator`);
    if (users.has(name)) throw new Error(`${where}: user ${JSON.stringify(name)} is listed twice`);
    users.set(name, { name, hash, role });
  });
  return users;
}

export class ConsoleUsers {
  #users = new Map<string, ConsoleUser>();
  #mtime = -1;
  #dummy: Promise<string> | undefined;

  private constructor(private readonly file: string) {}

  /** Reads the file; throws if it cannot be read or is malformed. */
  static async open(file: string): Promise<ConsoleUsers> {
    const users = new ConsoleUsers(file);
    await users.#reload(true);
    return users;
  }

  async #reload(strict: boolean): Promise<void> {
    try {
      const st = await stat(this.file);
      if (st.mtimeMs === this.#mtime) return;
      this.#users = parseConsoleUsers(await readFile(this.file, 'utf8'), this.file);
      this.#mtime = st.mtimeMs;
    } catch (err) {
      if (strict) throw err;
    }
  }

  /**
   * The user's role when the password matches, else undefined. An unknown user's password is
   * checked against a dummy hash, so the time taken does not tell who exists.
   */
  async verify(name: string, password: string): Promise<Role | undefined> {
    await this.#reload(false);
    const user = this.#users.get(name);
    if (!user) {
      const first = this.#users.values().next().value;
      this.#dummy ??= dummyHashLike(first && { hash: first.hash, kind: (classifyHash(first.hash) as { kind: 'argon2id' | 'bcrypt' }).kind });
      await verifyPassword(await this.#dummy, password);
      return undefined;
    }
    return (await verifyPassword(user.hash, password)) ? user.role : undefined;
  }
}

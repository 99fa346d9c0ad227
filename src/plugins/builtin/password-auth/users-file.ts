/**
 * @module users-file
 * The users file of password authentication: one `user:hash` line per user, `#` comments,
 * blank lines, so an existing htpasswd file made with `htpasswd -B` fits as it is. An optional
 * third field lists the user's groups: `alice:$argon2id$...:staff,ops`.
 *
 * Hashes: argon2id (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`, what `flexscript passwd`
 * writes) and bcrypt (`$2y$`, `$2b$`, `$2a$`, what htpasswd writes). Anything else is refused at
 * load, naming the file and line but never repeating the hash.
 *
 * Parsing is pure (`parseUsersFile`); `UsersFile` adds reading and re-reading when the file
 * changes, keeping the last good contents when a new version is bad.
 */
import { promises as fs, statSync, type Stats } from 'node:fs';
import { classifyHash, type HashKind } from '../../../util/hash-format.ts';
import { formatProblem } from '../../../util/source-location.ts';
import { entryLines, usernameProblem } from '../../../util/user-lines.ts';

export interface UserEntry {
  readonly username: string;
  readonly hash: string;
  readonly kind: HashKind;
  readonly groups: readonly string[];
  /** 1-based line in the file. */
  readonly line: number;
}

/** A problem in a users file, printed as `FILE:LINE: problem`. */
export class UsersFileError extends Error {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, problem: string) {
    super(formatProblem({ file, line, problem }));
    this.name = 'UsersFileError';
    this.file = file;
    this.line = line;
  }
}

const GROUP = /^[A-Za-z0-9_.-]{1,64}$/;

/** Parses a users file's text; throws UsersFileError at the first bad line. */
export function parseUsersFile(text: string, file: string): Map<string, UserEntry> {
  const users = new Map<string, UserEntry>();
  for (const { line, content } of entryLines(text)) {
    const fields = content.split(':');
    if (fields.length < 2 || fields.length > 3) throw new UsersFileError(file, line, 'expected user:hash or user:hash:groups');
    const [username, hash, groupList] = fields as [string, string, string | undefined];
    const bad = usernameProblem(username);
    if (bad) throw new UsersFileError(file, line, `the user name ${bad}`);
    const shown = JSON.stringify(username);
    const kind = classifyHash(hash);
    if ('problem' in kind) throw new UsersFileError(file, line, `user ${shown}: ${kind.problem}`);
    const groups = groupList === undefined || groupList === '' ? [] : groupList.split(',');
    const badGroup = groups.find((g) => !GROUP.test(g));
    if (badGroup !== undefined)
      throw new UsersFileError(file, line, `user ${shown}: group ${JSON.stringify(badGroup.slice(0, 64))} is not letters, digits, _ . -`);
    const first = users.get(username);
    if (first) throw new UsersFileError(file, line, `user ${shown} is already defined on line ${first.line}`);
    users.set(username, { username, hash, kind: kind.kind, groups, line });
  }
  return users;
}

const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** What identifies a version of the file: a rename (editors, passwd) changes the inode. */
function fingerprint(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

export interface UsersFileOptions {
  /** Called with the problem when a changed file is bad (the previous contents stay in use). */
  readonly onError?: (err: Error) => void;
  readonly onReload?: (users: number) => void;
  /** Re-check the file at most this often (ms); by default at every refresh (one stat). */
  readonly checkEveryMs?: number;
  readonly now?: () => number;
}

/**
 * A users file kept current: `refresh()` (called before each authentication) re-reads it when
 * its inode, size or modification time changed. A stat per login costs nothing next to a hash.
 */
export class UsersFile {
  #users: Map<string, UserEntry>;
  #fingerprint: string;
  #checkedAt: number;
  #checking: Promise<void> | undefined;
  #now: () => number;

  private constructor(
    readonly path: string,
    users: Map<string, UserEntry>,
    fp: string,
    private readonly options: UsersFileOptions,
  ) {
    this.#users = users;
    this.#fingerprint = fp;
    this.#now = options.now ?? Date.now;
    this.#checkedAt = this.#now();
  }

  /** Reads the file; throws UsersFileError when it is missing, too large or has a bad line. */
  static async load(path: string, options: UsersFileOptions = {}): Promise<UsersFile> {
    const { users, fp } = await UsersFile.#read(path);
    return new UsersFile(path, users, fp, options);
  }

  static async #read(path: string): Promise<{ users: Map<string, UserEntry>; fp: string }> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(path, 'r');
    } catch (err) {
      throw new UsersFileError(path, 0, `cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      // stat and read the same open file, so the fingerprint belongs to the text read
      const stat = await fh.stat();
      if (!stat.isFile()) throw new UsersFileError(path, 0, 'not a regular file');
      if (stat.size > MAX_FILE_BYTES) throw new UsersFileError(path, 0, `larger than ${MAX_FILE_BYTES} bytes`);
      const text = await fh.readFile('utf8');
      return { users: parseUsersFile(text, path), fp: fingerprint(stat) };
    } finally {
      await fh.close();
    }
  }

  get size(): number {
    return this.#users.size;
  }

  get(username: string): UserEntry | undefined {
    return this.#users.get(username);
  }

  entries(): IterableIterator<UserEntry> {
    return this.#users.values();
  }

  /** World-readable hashes invite offline guessing: the caller warns. */
  worldReadable(): boolean {
    return ((statSync(this.path, { throwIfNoEntry: false })?.mode ?? 0) & 0o004) !== 0;
  }

  /** Re-reads the file if it changed; a bad or missing new version keeps the old contents. */
  refresh(): Promise<void> {
    const now = this.#now();
    if (now - this.#checkedAt < (this.options.checkEveryMs ?? 0)) return this.#checking ?? Promise.resolve();
    this.#checkedAt = now;
    // concurrent authentications share one check
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<void> {
    let stat: Stats;
    try {
      stat = await fs.stat(this.path);
    } catch (err) {
      this.options.onError?.(
        new UsersFileError(this.path, 0, `cannot read (${(err as NodeJS.ErrnoException).code}); keeping the ${this.#users.size} users loaded before`),
      );
      return;
    }
    if (fingerprint(stat) === this.#fingerprint) return;
    try {
      const { users, fp } = await UsersFile.#read(this.path);
      this.#users = users;
      this.#fingerprint = fp;
      this.options.onReload?.(users.size);
    } catch (err) {
      // remember the bad version so it is reported once, not at every login
      this.#fingerprint = fingerprint(stat);
      this.options.onError?.(err as Error);
    }
  }
}

/**
 * @module secrets-file
 * The TOTP secrets file: one `user:SECRET` line per enrolled user, the secret in base32 (RFC
 * 4648, what authenticator apps take), `#` comments and blank lines. `flexscript totp enroll`
 * writes it. A secret is a key, not a hash: whoever reads the file can make every code. So the
 * file must be a regular file (no link), owned by root or the daemon's user, and neither
 * writable by its group nor readable or writable by others (0600, or 0640 with the daemon's
 * group); anything else is refused at load and at every re-read, naming the file, never a secret.
 *
 * Parsing is pure (`parseSecretsFile`); `SecretsFile` adds reading and re-reading when the file
 * changes, keeping the last good contents when a new version is bad.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import { ErrorCode, FlexscriptError } from '../../../errors.ts';
import { formatProblem } from '../../../util/source-location.ts';
import { entryLines, usernameProblem } from '../../../util/user-lines.ts';

/** A problem with a secrets file, printed as `FILE:LINE: problem` (line 0: the file itself). */
class SecretsFileError extends FlexscriptError {
  constructor(file: string, line: number, problem: string) {
    super(ErrorCode.TOTP_SECRETS, formatProblem({ file, line, problem }));
  }
}

const BASE32 = /^[A-Z2-7]{16,128}$/;
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Parses a secrets file's text into user → base32 secret; throws SecretsFileError at the first bad line. */
export function parseSecretsFile(text: string, file: string): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const { line, content } of entryLines(text)) {
    const at = content.lastIndexOf(':');
    if (at < 0) throw new SecretsFileError(file, line, 'expected user:SECRET');
    const user = content.slice(0, at);
    const secret = content.slice(at + 1);
    const bad = usernameProblem(user);
    if (bad) throw new SecretsFileError(file, line, `the user name ${bad}`);
    if (!BASE32.test(secret)) throw new SecretsFileError(file, line, `user ${JSON.stringify(user)}: the secret is not 16 to 128 base32 characters (A-Z, 2-7)`);
    if (secrets.has(user)) throw new SecretsFileError(file, line, `user ${JSON.stringify(user)} is listed twice`);
    secrets.set(user, secret);
  }
  return secrets;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Why a secrets file's owner or mode is refused, or undefined; `uid` is the reader's user (the
 * daemon's). Root (`flexscript check`) does not know the daemon's user: any owner passes there,
 * and the daemon checks the owner again when it loads the file.
 */
export function secretsFileStatProblem(st: Pick<Stats, 'mode' | 'uid' | 'isFile'>, uid: number | undefined): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.uid !== 0 && st.uid !== uid && uid !== 0) return `owned by uid ${st.uid}: make root or the daemon's user its owner`;
  if (st.mode & 0o037) return `mode ${octal(st.mode)} lets others read or change the TOTP secrets; chmod 0640 (group: the daemon's) or 0600`;
  return undefined;
}

/** What identifies a version of the file: a rename (editors, enroll) changes the inode. */
function fingerprint(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.mode}:${s.uid}`;
}

export interface SecretsFileOptions {
  /** Called when a changed file is refused (the previous contents stay in use). */
  readonly onError?: (err: Error) => void;
  readonly onReload?: (users: number) => void;
  /** The daemon's uid (may own the file); the process's own by default. */
  readonly uid?: number;
}

/** A secrets file kept current: `refresh()` (before each check) re-reads it when it changed. */
export class SecretsFile {
  #secrets: Map<string, string>;
  #fingerprint: string;
  #checking: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    loaded: { secrets: Map<string, string>; fp: string },
    private readonly options: SecretsFileOptions,
  ) {
    this.#secrets = loaded.secrets;
    this.#fingerprint = loaded.fp;
  }

  /** Reads and checks the file; throws SecretsFileError when it is refused. */
  static async load(path: string, options: SecretsFileOptions = {}): Promise<SecretsFile> {
    return new SecretsFile(path, await SecretsFile.#read(path, options.uid ?? process.getuid?.()), options);
  }

  static async #read(path: string, uid: number | undefined): Promise<{ secrets: Map<string, string>; fp: string }> {
    let fh: fs.FileHandle;
    try {
      // a link planted in its place is not followed
      fh = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SecretsFileError(path, 0, code === 'ELOOP' ? 'is a symbolic link' : `cannot open: ${code ?? String(err)}`);
    }
    try {
      const stat = await fh.stat();
      const problem = secretsFileStatProblem(stat, uid);
      if (problem) throw new SecretsFileError(path, 0, problem);
      if (stat.size > MAX_FILE_BYTES) throw new SecretsFileError(path, 0, `larger than ${MAX_FILE_BYTES} bytes`);
      return { secrets: parseSecretsFile(await fh.readFile('utf8'), path), fp: fingerprint(stat) };
    } finally {
      await fh.close();
    }
  }

  get size(): number {
    return this.#secrets.size;
  }

  /** The user's base32 secret, if enrolled. */
  get(username: string): string | undefined {
    return this.#secrets.get(username);
  }

  /** Re-reads the file if it changed; a refused new version keeps the old contents. */
  refresh(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<void> {
    let stat: Stats;
    try {
      stat = await fs.lstat(this.path);
    } catch (err) {
      this.options.onError?.(
        new SecretsFileError(this.path, 0, `cannot read (${(err as NodeJS.ErrnoException).code}); keeping the ${this.#secrets.size} users loaded before`),
      );
      return;
    }
    if (fingerprint(stat) === this.#fingerprint) return;
    try {
      const loaded = await SecretsFile.#read(this.path, this.options.uid ?? process.getuid?.());
      this.#secrets = loaded.secrets;
      this.#fingerprint = loaded.fp;
      this.options.onReload?.(loaded.secrets.size);
    } catch (err) {
      // reported once per bad version, not at every login
      this.#fingerprint = fingerprint(stat);
      this.options.onError?.(err as Error);
    }
  }
}

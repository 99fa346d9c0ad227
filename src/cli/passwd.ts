/**
 * @module passwd
 * `flexscript passwd USER --file FILE`: sets a user's password in a users file as an argon2id
 * hash (or removes the user with --delete). The password is read from the terminal without
 * echo, twice, or from the first line of stdin when stdin is not a terminal (for scripts).
 *
 * The file is replaced atomically (temporary file, fsync, rename) so the daemon never reads a
 * half-written file; every other line, comments included, is kept as it was. A new file is
 * created with mode 0640.
 */
import { constants, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { ReadStream } from 'node:tty';
import { usernameProblem } from '../util/user-lines.ts';
import { hashPassword, MAX_PASSWORD_BYTES } from '../util/password-hash.ts';

export interface PasswdOptions {
  readonly file: string;
  readonly delete?: boolean;
  /** Comma-separated groups; when absent, an existing user keeps theirs. */
  readonly groups?: string;
}

export interface PasswdIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
}

class PasswdError extends Error {}

const GROUP = /^[A-Za-z0-9_.-]{1,64}$/;

/** Reads one line from the terminal with echo off; Ctrl-C or Ctrl-D cancel. */
function readHidden(prompt: string, input: ReadStream, output: NodeJS.WritableStream): Promise<string> {
  // echo goes off before the prompt shows, so nothing typed after it is ever echoed
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  output.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let typed = '';
    const done = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new PasswdError('cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}

/** The first line of a non-terminal stdin. */
async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > 64 * 1024) break;
  }
  return text.split('\n')[0]!.replace(/\r$/, '');
}

async function readNewPassword(user: string, io: PasswdIo): Promise<string> {
  let password: string;
  if (io.stdin.isTTY) {
    const tty = io.stdin as unknown as ReadStream;
    password = await readHidden(`New password for ${user}: `, tty, io.stderr);
    const again = await readHidden('Again: ', tty, io.stderr);
    if (again !== password) throw new PasswdError('the passwords do not match; nothing changed');
  } else {
    password = await readFirstLine(io.stdin);
  }
  if (password === '') throw new PasswdError('empty password refused; nothing changed');
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new PasswdError(`password longer than ${MAX_PASSWORD_BYTES} bytes refused`);
  return password;
}

/** The user's line number (0-based) in `lines`, refusing a user defined twice. */
function findUser(lines: readonly string[], user: string, file: string): number {
  const at = lines.flatMap((l, i) => (!l.startsWith('#') && l.split(':')[0] === user ? [i] : []));
  if (at.length > 1) throw new PasswdError(`${file}: user ${JSON.stringify(user)} is on lines ${at.map((i) => i + 1).join(' and ')}; fix the file first`);
  return at[0] ?? -1;
}

/** Replaces `path` with `text` atomically, keeping the old file's mode and owner. */
export async function replaceFile(path: string, text: string): Promise<void> {
  const old = await fs.stat(path).catch(() => undefined);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, old ? old.mode & 0o777 : 0o640);
  try {
    try {
      await fh.chmod(old ? old.mode & 0o777 : 0o640); // the umask must not loosen or tighten it
      if (old) await fh.chown(old.uid, old.gid).catch(() => undefined); // only root can give it away
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  // the rename itself must survive a crash
  const dir = await fs.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function passwdCommand(user: string, o: PasswdOptions, io: PasswdIo = { stdin: process.stdin, stderr: process.stderr }): Promise<number> {
  try {
    const bad = usernameProblem(user);
    if (bad) throw new PasswdError(`user name ${JSON.stringify(user)} ${bad}`);
    const groups = o.groups?.split(',').filter((g) => g !== '');
    const badGroup = groups?.find((g) => !GROUP.test(g));
    if (badGroup !== undefined) throw new PasswdError(`group ${JSON.stringify(badGroup)} is not letters, digits, _ . -`);

    let text = '';
    try {
      text = await fs.readFile(o.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || o.delete)
        throw new PasswdError(`${o.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
    const at = findUser(lines, user, o.file);

    if (o.delete) {
      if (at < 0) throw new PasswdError(`${o.file}: no user ${JSON.stringify(user)}`);
      lines.splice(at, 1);
      await replaceFile(o.file, lines.length ? `${lines.join('\n')}\n` : '');
      io.stderr.write(`removed ${user} from ${o.file}\n`);
      return 0;
    }

    const password = await readNewPassword(user, io);
    const hash = await hashPassword(password);
    const kept = at >= 0 ? lines[at]!.replace(/\r$/, '').split(':')[2] : undefined;
    const groupField = groups ? groups.join(',') : kept;
    const line = groupField ? `${user}:${hash}:${groupField}` : `${user}:${hash}`;
    if (at >= 0) lines[at] = line;
    else lines.push(line);
    await replaceFile(o.file, `${lines.join('\n')}\n`);
    io.stderr.write(`${at >= 0 ? 'updated' : 'added'} ${user} in ${o.file}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`flexscript passwd: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

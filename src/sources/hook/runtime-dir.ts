/**
 * @module runtime-dir
 * The hook client's meeting point with the daemon: DIR/spool (event files), DIR/reply (answer
 * FIFOs), DIR/ring (the FIFO that wakes the daemon) and DIR/daemon.pid. Only OpenVPN's user and
 * group may enter it; the mode and group come from the config.
 *
 * Every member of that group may create and replace entries in DIR, so the daemon changes and
 * reads them through descriptors opened without following a link and without blocking, never by
 * name: a link planted there must not lead the daemon's chown or chmod to another of its files,
 * and a FIFO planted as the pid file must not stall its start.
 */
import { execFileSync } from 'node:child_process';
import { groupId } from '../../util/group-id.ts';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { FlexscriptError, ErrorCode } from '../../errors.ts';

export interface RuntimePaths {
  readonly dir: string;
  readonly spool: string;
  readonly reply: string;
  readonly ring: string;
  readonly pidFile: string;
}

export function runtimePaths(dir: string): RuntimePaths {
  return { dir, spool: join(dir, 'spool'), reply: join(dir, 'reply'), ring: join(dir, 'ring'), pidFile: join(dir, 'daemon.pid') };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Opens an entry of DIR without following a link or blocking, checks its type, and runs fn on it. */
function withEntry<T>(path: string, flags: number, want: (st: Stats) => boolean, what: string, fn: (fd: number) => T): T {
  const fd = openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!want(fstatSync(fd))) throw new FlexscriptError(ErrorCode.STATE, `${path} is not ${what}`);
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** The pid file's text: a regular file, read without following a link or blocking. */
function readPidFile(paths: RuntimePaths): string {
  return withEntry(
    paths.pidFile,
    constants.O_RDONLY,
    (st) => st.isFile(),
    'a regular file',
    (fd) => {
      const buf = Buffer.alloc(32);
      return buf.subarray(0, readSync(fd, buf)).toString('utf8');
    },
  );
}

/** The pid in the pid file if that process still runs. */
export function livePid(paths: RuntimePaths): number | undefined {
  try {
    const pid = Number(readPidFile(paths).trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the directories and the ring FIFO with the configured mode and group. */
export function prepareRuntimeDir(paths: RuntimePaths, mode: number, group?: string): void {
  const gid = group === undefined ? -1 : groupId(group);
  for (const d of [paths.dir, paths.spool, paths.reply]) {
    mkdirSync(d, { recursive: true });
    const st = lstatSync(d);
    if (!st.isDirectory()) throw new FlexscriptError(ErrorCode.STATE, `${d} is not a directory`);
    withEntry(
      d,
      constants.O_RDONLY | constants.O_DIRECTORY,
      (s) => s.isDirectory(),
      'a directory',
      (fd) => {
        const uid = fstatSync(fd).uid;
        if (uid !== process.getuid!())
          throw new FlexscriptError(ErrorCode.STATE, `${d} is owned by uid ${uid}, not the daemon's user (uid ${process.getuid!()})`);
        if (gid !== -1) fchownSync(fd, -1, gid);
        // setgid: files a hook writes get the group the daemon reads with
        fchmodSync(fd, mode | (gid !== -1 ? 0o2000 : 0));
      },
    );
  }
  let st: Stats | undefined;
  try {
    st = lstatSync(paths.ring);
  } catch {
    st = undefined;
  }
  // only a FIFO the daemon made is kept; anything else under that name is replaced
  const ours = st?.isFIFO() === true && st.uid === process.getuid!();
  if (st && !ours) rmSync(paths.ring, { force: true });
  // Node cannot make a FIFO itself; this runs once at start.
  if (!ours) execFileSync('mkfifo', ['-m', '0600', paths.ring]);
  withEntry(
    paths.ring,
    constants.O_RDWR,
    (s) => s.isFIFO() && s.uid === process.getuid!(),
    "a FIFO of the daemon's user",
    (fd) => {
      if (gid !== -1) fchownSync(fd, -1, gid);
      fchmodSync(fd, mode & 0o660);
    },
  );
}

export function writePidFile(paths: RuntimePaths, mode: number): void {
  const tmp = `${paths.pidFile}.${process.pid}`;
  // a new file only (O_EXCL never follows a link), whatever was left or planted under that name
  rmSync(tmp, { force: true });
  writeFileSync(tmp, `${process.pid}\n`, { mode: mode & 0o644, flag: 'wx' });
  renameSync(tmp, paths.pidFile);
}

export function removePidFile(paths: RuntimePaths): void {
  try {
    if (readPidFile(paths).trim() === String(process.pid)) unlinkSync(paths.pidFile);
  } catch {
    // already gone
  }
}

/**
 * @module runtime-dir
 * The hook client's meeting point with the daemon: DIR/spool (event files), DIR/reply (answer
 * FIFOs), DIR/ring (the FIFO that wakes the daemon) and DIR/daemon.pid. Only OpenVPN's user and
 * group may enter it; the mode and group come from the config.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** Looks a group up in /etc/group (Node has no getgrnam). */
export function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid) return Number(gid);
  }
  throw new FlexscriptError(ErrorCode.STATE, `group ${name} does not exist`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in the pid file if that process still runs. */
export function livePid(paths: RuntimePaths): number | undefined {
  try {
    const pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
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
    if (st.uid !== process.getuid!()) throw new FlexscriptError(ErrorCode.STATE, `${d} is owned by uid ${st.uid}, not the daemon's user (uid ${process.getuid!()})`);
    if (gid !== -1) chownSync(d, -1, gid);
    // setgid: files a hook writes (even as root, for `up`) get the group the daemon reads with
    chmodSync(d, mode | (gid !== -1 ? 0o2000 : 0));
  }
  let st;
  try {
    st = lstatSync(paths.ring);
  } catch {
    st = undefined;
  }
  if (st && !st.isFIFO()) rmSync(paths.ring, { force: true });
  // Node cannot make a FIFO itself; this runs once at start.
  if (!st || !st.isFIFO()) execFileSync('mkfifo', ['-m', '0600', paths.ring]);
  if (gid !== -1) chownSync(paths.ring, -1, gid);
  chmodSync(paths.ring, mode & 0o660);
}

export function writePidFile(paths: RuntimePaths, mode: number): void {
  const tmp = `${paths.pidFile}.${process.pid}`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: mode & 0o644 });
  renameSync(tmp, paths.pidFile);
}

export function removePidFile(paths: RuntimePaths): void {
  try {
    if (readFileSync(paths.pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(paths.pidFile);
  } catch {
    // already gone
  }
}

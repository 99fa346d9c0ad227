/**
 * @module spool-read
 * Reads one spool file without trusting what DIR/spool holds. Every member of `hook.group` may
 * create entries there, so a name may be a FIFO (a plain read blocks the daemon's only thread
 * until someone writes to it), a link to /dev/zero or to a huge file, a file far larger than any
 * environment, or a file another user wrote. Only a regular file of the daemon's own user (the
 * hook runs as OpenVPN's user, which the daemon shares, and as that user even for a root `up`),
 * with one link and at most MAX_SPOOL_BYTES, is read: opened without following a link and
 * without blocking, and checked again on the open descriptor, so a swap after the first look
 * changes nothing.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { SpoolError } from '../../errors.ts';

/**
 * A real event is a few KiB (client-connect with long peer info and a certificate chain stays
 * far below 64 KiB). An environment cannot exceed what execve accepts (a few MiB at most), and
 * quoting can make a value up to four times longer in the file; 1 MiB leaves room for any real
 * one and bounds the time one file can take.
 */
const MAX_SPOOL_BYTES = 1024 * 1024;

/** An entry that is not a file the hook can have written: refused before it is parsed. */
export class SpoolEntryRefused extends SpoolError {}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

function check(st: Stats, uid: number, max: number): void {
  if (st.isSymbolicLink()) throw new SpoolEntryRefused('spool entry is a symbolic link, not a file the hook wrote');
  if (!st.isFile()) throw new SpoolEntryRefused(`spool entry is not a regular file (${kind(st)})`);
  if (st.uid !== uid) throw new SpoolEntryRefused(`spool file is owned by uid ${st.uid}, not the daemon's user (uid ${uid})`);
  if (st.nlink !== 1) throw new SpoolEntryRefused(`spool file has ${st.nlink} links; a file the hook wrote has one`);
  if (st.size > max) throw new SpoolEntryRefused(`spool file is larger than ${max} bytes (${st.size})`);
}

/**
 * The bytes of a spool file, or a SpoolError saying why the entry is refused. An errno error
 * (ENOENT for a name already handled) passes through.
 */
export function readSpoolBytes(path: string, uid: number, max = MAX_SPOOL_BYTES): Buffer {
  // a look first, so that a device or FIFO is never even opened
  check(lstatSync(path), uid, max);
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new SpoolEntryRefused('spool entry is a symbolic link, not a file the hook wrote');
    throw err;
  }
  try {
    const st = fstatSync(fd);
    check(st, uid, max);
    // the file may still grow (a hook still writing): read to its end, never past max + 1
    let buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > max) break;
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, max + 1));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > max) throw new SpoolEntryRefused(`spool file is larger than ${max} bytes`);
    return buf.subarray(0, len);
  } finally {
    closeSync(fd);
  }
}

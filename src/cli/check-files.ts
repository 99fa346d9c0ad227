/**
 * @module check-files
 * `flexscript check`: files the daemon reads as its own user, and folders OpenVPN must find. The
 * check runs as root, which reads everything; the daemon does not. Permissions are worked out
 * for the daemon's user from the files' owners and modes, its primary and supplementary groups.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatProblem } from '../errors.ts';
import type { FieldPath, LoadedConfig } from '../config/load-config.ts';
import { parseGroupFile, parsePasswdFile } from '../util/system-accounts.ts';
import type { Findings } from './findings.ts';

/** A user with every group it belongs to. */
interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly gids: ReadonlySet<number>;
  readonly groupName: string;
}

const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** The account of a user name, or undefined when the user does not exist here. */
function accountOf(name: string, passwd = '/etc/passwd', group = '/etc/group'): Account | undefined {
  const user = parsePasswdFile(read(passwd)).find((u) => u.name === name);
  if (!user) return undefined;
  const groups = parseGroupFile(read(group));
  const gids = new Set([user.gid, ...groups.filter((g) => g.members.includes(name)).map((g) => g.gid)]);
  return { name, uid: user.uid, gid: user.gid, gids, groupName: groups.find((g) => g.gid === user.gid)?.name ?? String(user.gid) };
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/** Whether the account has `bits` (4 read, 1 search) on a file of this owner and mode. */
function allowed(st: Stats, a: Account, bits: number): boolean {
  if (a.uid === 0) return true;
  if (st.uid === a.uid) return ((st.mode >> 6) & bits) === bits;
  if (a.gids.has(st.gid)) return ((st.mode >> 3) & bits) === bits;
  return (st.mode & bits) === bits;
}

/** Why the account cannot read `path` (a folder it cannot enter, or the file's mode), or undefined when it can. */
function unreadableReason(path: string, a: Account): string | undefined {
  const dirs: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of dirs) {
    let st: Stats;
    try {
      st = statSync(d);
    } catch {
      return undefined; // missing: loading the plugin reports that
    }
    if (!allowed(st, a, 1)) return `it cannot enter ${d} (uid ${st.uid}, gid ${st.gid}, mode ${octal(st.mode)})`;
  }
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  if (!allowed(st, a, 4)) return `${path} has uid ${st.uid}, gid ${st.gid}, mode ${octal(st.mode)}`;
  return undefined;
}

/** password-auth's users file must be readable by the daemon's user, or every login fails once it runs. */
export function checkUsersFiles(loaded: LoadedConfig, daemonUser: string | undefined, f: Findings): void {
  const account = daemonUser === undefined ? undefined : accountOf(daemonUser);
  if (!account) return;
  loaded.config.plugins.forEach((p, i) => {
    if (!p.enabled || p.use !== 'password-auth') return;
    const file = (p.options as { file?: unknown } | undefined)?.file;
    if (typeof file !== 'string') return;
    const path = resolve(loaded.dir, file);
    const why = unreadableReason(path, account);
    if (!why) return;
    const field: FieldPath = ['plugins', i, 'options', 'file'];
    const problem = `the daemon runs as ${account.name} and cannot read the users file: ${why}; chgrp ${account.groupName} ${path} && chmod 0640 ${path} (root stays its owner; the daemon's group reads it)`;
    f.problems.push(...loaded.problems([{ code: 'custom', path: [], message: problem, input: undefined }], field).map(formatProblem));
  });
}

/** Management mode: OpenVPN creates its management socket in a folder that must exist when it starts. */
export function checkManagementSocketDirs(loaded: LoadedConfig, f: Findings): void {
  loaded.config.management?.instances.forEach((instance, i) => {
    if (!instance.socket) return;
    const dir = dirname(instance.socket);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      // missing
    }
    if (isDir) return;
    const problem = `${dir} does not exist: OpenVPN cannot create its management socket there and exits at start; create it (mkdir -m 0755 ${dir}; below /run also a tmpfiles.d line \`d ${dir} 0755 root root -\` so it is there after a reboot)`;
    f.problems.push(
      ...loaded.problems([{ code: 'custom', path: [], message: problem, input: undefined }], ['management', 'instances', i, 'socket']).map(formatProblem),
    );
  });
}

/**
 * @module init-users
 * Whose user is whose in the setup `flexscript init` writes. Two accounts, decided once here and
 * used by every file init writes:
 * - OpenVPN's: the `user` and `group` lines of its config (OpenVPN starts as root and drops to
 *   them). In hook mode OpenVPN's hooks run as it and create the deferral files as it.
 * - the daemon's: `User=`/`Group=` of flexscriptd.service, the owner of its runtime, state and
 *   log folders, its sockets' group, the one user sudo lets start the root stage. Hook mode:
 *   OpenVPN's (OpenVPN creates its deferral files readable by its user only). Management mode:
 *   its own, `flexscript` (made by the sysusers.d file init writes), so a compromised OpenVPN
 *   cannot reach the daemon's data or its root stage.
 */

export type InitMode = 'hook' | 'management';

/** A user and its group. */
export interface Account {
  readonly user: string;
  readonly group: string;
}

export interface Accounts {
  readonly openvpn: Account;
  readonly daemon: Account;
}

/** What the command line gave; the old `--user`/`--group` are the same as `--openvpn-user`/`--openvpn-group`. */
export interface UserFlags {
  readonly openvpnUser?: string;
  readonly openvpnGroup?: string;
  readonly user?: string;
  readonly group?: string;
  readonly daemonUser?: string;
  readonly daemonGroup?: string;
}

/** OpenVPN's account when none is named: Debian's sample configs' `user nobody`, `group nogroup`. */
const DEFAULT_OPENVPN: Account = { user: 'nobody', group: 'nogroup' };
/** The management-mode daemon's own user (and group of the same name). */
const DEFAULT_DAEMON_USER = 'flexscript';

/**
 * A plain name: it goes into OpenVPN's config, unit files, sysusers.d, tmpfiles.d and sudoers,
 * none of which may see a space, a line break or a sudoers alias. Debian's rule for new names.
 */
const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** One flag given under its new and its old name: both must agree. */
function either(flag: string, value: string | undefined, alias: string, aliased: string | undefined): string | undefined {
  if (value !== undefined && aliased !== undefined && value !== aliased)
    throw new Error(`${flag} ${value} and ${alias} ${aliased} name different accounts; ${alias} is the old name of ${flag}: give one`);
  return value ?? aliased;
}

/**
 * The two accounts for a mode, or an Error whose message says which flags cannot work together
 * and why (the command exits 2).
 */
export function resolveAccounts(mode: InitMode, f: UserFlags): Accounts {
  const openvpn: Account = {
    user: either('--openvpn-user', f.openvpnUser, '--user', f.user) ?? DEFAULT_OPENVPN.user,
    group: either('--openvpn-group', f.openvpnGroup, '--group', f.group) ?? DEFAULT_OPENVPN.group,
  };
  for (const [flag, name] of [
    ['--openvpn-user', openvpn.user],
    ['--openvpn-group', openvpn.group],
    ['--daemon-user', f.daemonUser],
    ['--daemon-group', f.daemonGroup],
  ] as const) {
    if (name !== undefined && !NAME.test(name))
      throw new Error(`${flag} ${JSON.stringify(name)}: not a plain user or group name (lower case letters, digits, _ and -; at most 32)`);
  }
  if (openvpn.user === 'root' || f.daemonUser === 'root')
    throw new Error(
      `${openvpn.user === 'root' ? '--openvpn-user' : '--daemon-user'} root: the daemon runs unprivileged (root work goes through the root stage)${openvpn.user === 'root' ? ', and OpenVPN drops root after start-up' : ''}; name an unprivileged user`,
    );
  if (mode === 'hook') {
    // the daemon answers in OpenVPN's deferral files, which OpenVPN creates readable by its own user only
    if (f.daemonUser !== undefined && f.daemonUser !== openvpn.user)
      throw new Error(
        `--daemon-user ${f.daemonUser} with --mode hook: in hook mode the daemon runs as OpenVPN's user (${openvpn.user}), since OpenVPN creates its deferral files readable by that user only; drop --daemon-user, or name OpenVPN's user with --openvpn-user`,
      );
    if (f.daemonGroup !== undefined && f.daemonGroup !== openvpn.group)
      throw new Error(
        `--daemon-group ${f.daemonGroup} with --mode hook: in hook mode the daemon runs in OpenVPN's group (${openvpn.group}), which shares the runtime directory with OpenVPN's hooks; drop --daemon-group, or name OpenVPN's group with --openvpn-group`,
      );
    return { openvpn, daemon: openvpn };
  }
  const user = f.daemonUser ?? DEFAULT_DAEMON_USER;
  // a user made for the daemon has a group of its name; Debian's nobody has none (its group is nogroup)
  return { openvpn, daemon: { user, group: f.daemonGroup ?? (user === DEFAULT_OPENVPN.user ? DEFAULT_OPENVPN.group : user) } };
}

/** What works but gives something up: said when init runs. */
export function accountWarnings(mode: InitMode, a: Accounts): string[] {
  if (mode === 'management' && a.daemon.user === a.openvpn.user)
    return [
      `the daemon runs as OpenVPN's user (${a.daemon.user}): OpenVPN, which talks to every client, could then read the daemon's store and start its root stage; management mode lets the daemon have its own user (the default, ${DEFAULT_DAEMON_USER})`,
    ];
  return [];
}

/** Users and groups every Debian system has: sysusers.d need not create them. */
const SYSTEM_USERS = new Set(['nobody', 'root']);
const SYSTEM_GROUPS = new Set(['nogroup', 'root']);

/** systemd-sysusers lines for the daemon's account, or none when the system has it. */
export function sysusersLines(a: Account): string[] {
  const lines: string[] = [];
  if (a.group !== a.user && !SYSTEM_GROUPS.has(a.group)) lines.push(`g ${a.group} -`);
  if (!SYSTEM_USERS.has(a.user))
    lines.push(a.group === a.user ? `u ${a.user} - "openvpn-flexscript daemon" / -` : `u ${a.user} -:${a.group} "openvpn-flexscript daemon" / -`);
  return lines;
}

/** Who is who, as init prints it and as the files say it: one line each. */
export function accountsSummary(mode: InitMode, a: Accounts): string[] {
  const daemon = `${a.daemon.user}:${a.daemon.group}`;
  return [
    `OpenVPN drops to ${a.openvpn.user}:${a.openvpn.group} (its user and group lines)`,
    mode === 'hook'
      ? `the daemon runs as ${daemon}, OpenVPN's user (hook mode), and owns /run/flexscript, the spool, /var/lib/flexscript and /var/log/flexscript; sudo lets ${a.daemon.user} start the root stage`
      : `the daemon runs as ${daemon}, its own user (management mode), and owns /run/flexscript, its sockets, /var/lib/flexscript and /var/log/flexscript; sudo lets ${a.daemon.user} start the root stage; OpenVPN lets only ${a.daemon.user} on its management socket`,
  ];
}

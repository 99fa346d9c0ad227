/**
 * @module check
 * `flexscript check`: everything that can be checked before the daemon runs. The config and its
 * plugins; the sockets and runtime directory (reachable only by OpenVPN's user and group); with
 * `--openvpn-config`, the lines the chosen mode needs in OpenVPN's server config; with `root:`,
 * the root config, whether root may trust it, and the sudoers drop-in; the systemd units OpenVPN
 * and the daemon run under (check-units.ts); the console's files and provider (check-console.ts). Every problem is one
 * line saying where, what, and how to fix it; any problem means exit 1. Warnings (things that
 * work but cost or surprise) are printed too and do not change the exit code.
 */
import { accessSync, constants, lstatSync, readFileSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, errorMessage, formatProblem, type ConfigProblem } from '../errors.ts';
import { sourceLocation } from '../util/source-location.ts';
import { groupIdOf, userIdOf, userNameOf } from '../util/system-accounts.ts';
import type { Config, HookConfig, ManagementConfig } from '../config/config-schema.ts';
import { loadConfig, type FieldPath, type LoadedConfig } from '../config/load-config.ts';
import { EVENT_NAMES, type EventName } from '../events/event-map.ts';
import { createLogger } from '../logger.ts';
import { closePlugins, loadPlugins } from '../plugins/load-plugins.ts';
import { offlineServices } from '../daemon/services.ts';
import { loadRootConfig, RootConfigError } from '../root/root-config.ts';
import { checkSudoers, ROOT_SCRIPT, rootCommand } from '../root/sudoers.ts';
import { findUntrustedPaths, rootStagePaths } from '../root/trusted-paths.ts';
import {
  asksChallenges,
  sendsPendingNotices,
  CRRESPONSE_OPTION,
  crresponseCommand,
  HOOK_OPTION,
  hookCommand,
  hookMode,
  type HookLineOptions,
  type HookMode,
} from '../sources/hook/openvpn-lines.ts';
import { runtimePaths } from '../sources/hook/runtime-dir.ts';
import { HOOK_PATH } from './openvpn-config.ts';
import { parseOpenVpnConfig, type OpenVpnDirective } from '../util/openvpn-directives.ts';
import { checkUnits, installedDaemonUser, type UnitCheckOptions } from './check-units.ts';
import { checkManagementSocketDirs, checkUsersFiles } from './check-files.ts';
import { EXIT } from './exit-codes.ts';
import type { Findings } from './findings.ts';

export interface CheckOptions extends UnitCheckOptions {
  /** OpenVPN's server config, checked against the mode(s) the config uses. */
  readonly openvpnConfig?: string;
  /** The sudoers drop-in for the root stage. */
  readonly sudoers?: string;
  /** The user the daemon runs as (default: the runtime directory's owner, else OpenVPN's `user`). */
  readonly daemonUser?: string;
}

export const DEFAULT_SUDOERS = '/etc/sudoers.d/flexscript';

/** A uid by its user's name, for messages; the number when no user has it. */
const userName = (uid: number) => userNameOf(uid) ?? String(uid);

function stat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/** OpenVPN's config as the checks read it. */
interface OpenVpnLines {
  /** Every line with this name. */
  readonly all: (name: string) => OpenVpnDirective[];
  /** The last line with this name (the one OpenVPN uses). */
  readonly one: (name: string) => OpenVpnDirective | undefined;
  /** A finding at a line (the file's first when the line is missing). */
  readonly at: (d: OpenVpnDirective | undefined, field: string, problem: string) => string;
}

/** Checks OpenVPN's server config against the mode(s) the flexscript config uses. */
export function checkOpenVpnConfig(file: string, text: string, config: Config, handled: readonly EventName[], f: Findings): void {
  const directives = parseOpenVpnConfig(text);
  const all = (name: string) => directives.filter((d) => d.name === name);
  const lines: OpenVpnLines = {
    all,
    one: (name) => all(name).at(-1),
    at: (d, field, problem) => formatProblem({ file, line: d?.line ?? 1, field, problem }),
  };
  checkUserAndGroup(lines, f);
  checkTcpManagement(lines, f);
  if (config.management) checkManagementLines(lines, config.management, !!config.hook, handled, f);
  const { hook } = config;
  if (!hook) return;
  checkHookAccess(lines, hook, handled, f);
  const o: HookLineOptions = { challenges: asksChallenges(config.plugins), pendingNotices: sendsPendingNotices(config.plugins) };
  checkHookLines(lines, hook, handled, o, f);
  if (o.challenges) checkCrResponseLine(lines, hook, f);
  checkHookFiles(lines, hook, f);
}

/** OpenVPN drops root to a user and group that exist. */
function checkUserAndGroup({ one, at }: OpenVpnLines, f: Findings): void {
  const user = one('user');
  const group = one('group');
  if (!user) f.problems.push(at(undefined, 'user', 'missing: OpenVPN keeps running as root after start-up; add `user nobody` (and `group nogroup`)'));
  else if (userIdOf(user.args[0] ?? '') === undefined)
    f.problems.push(at(user, 'user', `user ${user.args[0]} does not exist; create it or name an existing one`));
  if (user && !group)
    f.problems.push(at(user, 'group', "missing: OpenVPN keeps root's group; add `group nogroup` (the group that shares the runtime directory and sockets)"));
  else if (group && groupIdOf(group.args[0] ?? '') === undefined)
    f.problems.push(at(group, 'group', `group ${group.args[0]} does not exist; create it or name an existing one`));
}

/**
 * A TCP management interface is open to every local user (and further, off loopback): OpenVPN
 * asks a password only when the line names a password file.
 */
function checkTcpManagement({ all, at }: OpenVpnLines, f: Findings): void {
  for (const d of all('management')) {
    const [host, port, pwFile] = d.args;
    if (port === 'unix' || host === undefined) continue;
    if (!isLoopback(host)) {
      f.problems.push(
        at(
          d,
          'management',
          `listens on ${host} ${port ?? ''}, beyond this machine: whoever reaches it can admit, deny and disconnect clients; use a unix socket (\`management /run/openvpn/NAME.sock unix\`) or 127.0.0.1`,
        ),
      );
    }
    if (pwFile === undefined) {
      f.problems.push(
        at(
          d,
          'management',
          `${host} ${port ?? ''} over TCP without a password file: any local user can connect and admit, deny or disconnect clients; use a unix socket with management-client-user, or add a password file as the third word (one line, owned by root, mode 0600) and give it to the daemon as password-file`,
        ),
      );
    }
  }
}

/** Management mode: OpenVPN's management line is an instance of the config, and asks the daemon about clients. */
function checkManagementLines({ one, at }: OpenVpnLines, management: ManagementConfig, hookToo: boolean, handled: readonly EventName[], f: Findings): void {
  const printed = (mode: string) => `the lines \`flexscript openvpn-config --config CONFIG --mode ${mode}\` prints`;
  const mgmt = one('management');
  const instance =
    mgmt && management.instances.find((i) => (i.socket ? mgmt.args[0] === i.socket && mgmt.args[1] === 'unix' : Number(mgmt.args[1]) === i.port));
  if (!mgmt) {
    if (!hookToo) f.problems.push(at(undefined, 'management', `missing: the daemon cannot reach this OpenVPN; add ${printed('management')}`));
  } else if (!instance) {
    const where = management.instances.map((i) => (i.socket ? `${i.socket} unix` : `${i.host ?? '127.0.0.1'} ${i.port}`)).join(', ');
    f.problems.push(
      at(
        mgmt,
        'management',
        `${mgmt.args.slice(0, 2).join(' ')} is not an instance of the config (${where}); make the socket path (or port) match management.instances`,
      ),
    );
  } else {
    if (!one('management-client-auth')) {
      f.problems.push(at(mgmt, 'management-client-auth', 'missing: OpenVPN then admits clients without asking the daemon; add `management-client-auth`'));
    }
    if (instance.socket && !one('management-client-user') && !one('management-client-group')) {
      f.problems.push(
        at(
          mgmt,
          'management-client-user',
          'missing: any local user who can reach the socket can admit and kill clients; add `management-client-user DAEMON-USER`',
        ),
      );
    }
    if (instance.socket && mgmt.args[2] === undefined && instance['password-file']) {
      f.problems.push(
        at(mgmt, 'management', `the config gives password-file ${instance['password-file']} but OpenVPN asks no password; add it as the third word`),
      );
    }
    if (!handled.includes('user-pass-verify') && !one('auth-user-pass-optional')) {
      f.warnings.push(
        at(
          mgmt,
          'auth-user-pass-optional',
          'missing while no plugin checks passwords: clients without a username and password are refused; add `auth-user-pass-optional` for certificate-only clients',
        ),
      );
    }
    if (!one('management-hold'))
      f.warnings.push(
        at(mgmt, 'management-hold', 'missing: clients that connect before the daemon attaches wait until hand-window runs out; consider `management-hold`'),
      );
  }
}

/** Hook mode: OpenVPN may run the hook client, as the runtime directory's owner and group. */
function checkHookAccess({ one, at }: OpenVpnLines, hook: HookConfig, handled: readonly EventName[], f: Findings): void {
  const user = one('user');
  const group = one('group');
  const security = Number(one('script-security')?.args[0] ?? 1);
  const viaEnv = (hook.events['user-pass-verify']?.method ?? 'via-file') === 'via-env';
  const needed = viaEnv && handled.includes('user-pass-verify') ? 3 : 2;
  if (security < needed) {
    f.problems.push(
      at(
        one('script-security'),
        'script-security',
        `${security} does not let OpenVPN run the hook client${needed === 3 ? ' with the password in its environment (via-env)' : ''}; set \`script-security ${needed}\``,
      ),
    );
  }
  // hook mode: the daemon runs as OpenVPN's user, which owns the runtime directory
  const dir = stat(hook.dir);
  if (user && dir && userIdOf(user.args[0] ?? '') !== dir.uid) {
    f.problems.push(
      at(
        user,
        'user',
        `OpenVPN runs hooks as ${user.args[0]} but ${hook.dir} belongs to ${userName(dir.uid)}; in hook mode run the daemon as OpenVPN's user (its deferral files are readable by that user only)`,
      ),
    );
  }
  if (group && hook.group !== undefined && group.args[0] !== hook.group && groupIdOf(group.args[0] ?? '') !== groupIdOf(hook.group)) {
    f.problems.push(
      at(
        group,
        'group',
        `OpenVPN's group is ${group.args[0]} but hook.group is ${hook.group}; the hook client writes into the runtime directory as OpenVPN's group: make them the same`,
      ),
    );
  }
}

/** Hook mode: one hook line per event the daemon needs, running the hook client as the config says. */
function checkHookLines(lines: OpenVpnLines, hook: HookConfig, handled: readonly EventName[], o: HookLineOptions, f: Findings): void {
  const wanted = new Set<EventName>([...handled, 'client-connect', 'client-disconnect']);
  // learn-address: connect means the daemon reports addresses itself; a hook would report them twice
  const learnAtConnect = hook['learn-address'] === 'connect';
  if (learnAtConnect) wanted.delete('learn-address');
  for (const event of EVENT_NAMES) checkHookLine(lines, hook, event, handled, wanted, learnAtConnect, o, f);
}

/**
 * Hook mode with a plugin that asks clients while they wait (totp `mode: dynamic`): the
 * client's answer reaches the daemon only through OpenVPN's client-crresponse hook.
 */
function checkCrResponseLine({ one, at }: OpenVpnLines, hook: HookConfig, f: Findings): void {
  const line = `${CRRESPONSE_OPTION} "${crresponseCommand(hook, HOOK_PATH)}"`;
  const d = one(CRRESPONSE_OPTION);
  if (!d) {
    f.problems.push(
      at(
        undefined,
        CRRESPONSE_OPTION,
        `missing: the totp plugin's mode dynamic asks the client (CR_TEXT) and its answer comes through this hook; add: ${line}`,
      ),
    );
    return;
  }
  const [program, runDir] = (d.args[0] ?? '').split(/\s+/);
  if (basename(program ?? '') !== 'flexscript-hook' || runDir !== hook.dir)
    f.problems.push(at(d, CRRESPONSE_OPTION, `does not hand the client's answer to the daemon (hook client, hook.dir); use: ${line}`));
}

/** The hook line of one event: present when wanted, and the hook client with the config's arguments. */
function checkHookLine(
  { one, at }: OpenVpnLines,
  hook: HookConfig,
  event: EventName,
  handled: readonly EventName[],
  wanted: ReadonlySet<EventName>,
  learnAtConnect: boolean,
  o: HookLineOptions,
  f: Findings,
): void {
  const option = HOOK_OPTION[event];
  const d = one(option);
  if (d && event === 'learn-address' && learnAtConnect) {
    f.problems.push(
      at(
        d,
        option,
        'hook.learn-address is connect: the daemon reports addresses when a connect is accepted, and this hook would report them twice; remove the line (or set hook.learn-address: hook)',
      ),
    );
    return;
  }
  const expected = hookCommand(event, hook, HOOK_PATH, o);
  const line = `${option} "${expected}"${event === 'user-pass-verify' ? ` ${hook.events['user-pass-verify']?.method ?? 'via-file'}` : ''}`;
  if (!d) {
    if (wanted.has(event))
      f.problems.push(
        at(
          undefined,
          option,
          `missing: ${handled.includes(event) ? 'a plugin handles' : 'the daemon tracks sessions with'} ${event} but OpenVPN never reports it; add: ${line}`,
        ),
      );
    return;
  }
  checkHookCommand(at, d, { event, option, expected, line, mode: hookMode(event, hook, o) }, hook, wanted, f);
}

/** What the hook line of one event must say. */
interface HookLine {
  readonly event: EventName;
  readonly option: string;
  /** The command the hook client runs with, as `flexscript openvpn-config` prints it. */
  readonly expected: string;
  /** The whole line, for the fix. */
  readonly line: string;
  /** The mode the hook client must run in. */
  readonly mode: HookMode;
}

/** A present hook line: it runs the hook client with the config's arguments, for an event the daemon needs. */
function checkHookCommand(
  at: OpenVpnLines['at'],
  d: OpenVpnDirective,
  { event, option, expected, line, mode: wantMode }: HookLine,
  hook: HookConfig,
  wanted: ReadonlySet<EventName>,
  f: Findings,
): void {
  const [program, runDir, mode, unreachable, seconds] = (d.args[0] ?? '').split(/\s+/);
  if (basename(program ?? '') !== 'flexscript-hook') {
    f.problems.push(
      at(
        d,
        option,
        `runs ${program}, not the hook client: the event never reaches the daemon; replace it with: ${line} (an existing script can run as the exec plugin)`,
      ),
    );
    return;
  }
  try {
    accessSync(program!, constants.X_OK);
  } catch {
    f.problems.push(at(d, option, `${program} is not an executable file; point it at ${HOOK_PATH}`));
  }
  if (runDir !== hook.dir) f.problems.push(at(d, option, `hands events to ${runDir} but hook.dir is ${hook.dir}; use: ${line}`));
  if ((event === 'client-connect' || event === 'user-pass-verify') && mode !== 'defer' && mode !== 'ask') {
    f.problems.push(
      at(d, option, `runs in ${mode} mode: OpenVPN's event loop (every client, traffic included) then waits for the plugins; use deferral: ${line}`),
    );
  } else if (event === 'user-pass-verify' && mode !== wantMode) {
    const why =
      wantMode === 'ask'
        ? "the totp plugin's mode dynamic asks the client, and OpenVPN reads the question only when this hook returns"
        : 'no plugin asks the client while it waits, and ask mode holds OpenVPN while the plugins run';
    f.problems.push(at(d, option, `runs in ${mode} mode but ${wantMode} mode is needed: ${why}; use: ${line}`));
  } else if (mode !== wantMode) {
    f.problems.push(at(d, option, `runs in ${mode} mode but the config says ${wantMode} (hook.events.${event}.wait); use: ${line}`));
  }
  const [, , , wantUnreachable, wantSeconds] = expected.split(' ');
  if (unreachable !== wantUnreachable) f.problems.push(at(d, option, `on-unreachable is ${unreachable} but the config says ${wantUnreachable}; use: ${line}`));
  if (seconds !== wantSeconds) f.problems.push(at(d, option, `waits ${seconds} s but hook.timeout is ${wantSeconds} s; use: ${line}`));
  if (event === 'user-pass-verify') {
    const method = hook.events['user-pass-verify']?.method ?? 'via-file';
    if (d.args[1] !== method) f.problems.push(at(d, option, `passes credentials ${d.args[1] ?? '(no method)'} but the config says ${method}; use: ${line}`));
  }
  if (!wanted.has(event)) f.warnings.push(at(d, option, `no plugin handles ${event}: OpenVPN starts a process per event for nothing; remove the line`));
}

/** Hook mode: OpenVPN writes the status file and its deferral files where the daemon reads them. */
function checkHookFiles({ one, at }: OpenVpnLines, hook: HookConfig, f: Findings): void {
  const statusFile = hook['status-file'];
  // a --status on OpenVPN's command line (Debian's openvpn-server@ unit) comes before --config: the config's lines win
  if (statusFile) {
    const status = one('status');
    if (status?.args[0] !== statusFile)
      f.problems.push(
        at(status, 'status', `hook.status-file is ${statusFile} but OpenVPN writes ${status?.args[0] ?? 'no status file'}; add \`status ${statusFile} 1\``),
      );
    if (one('status-version')?.args[0] !== '3')
      f.problems.push(at(one('status-version'), 'status-version', 'the daemon reads status-version 3; add `status-version 3`'));
  }
  const tmpDir = one('tmp-dir');
  const wantTmp = hook['tmp-dir'];
  if (wantTmp && tmpDir?.args[0] !== wantTmp) {
    f.problems.push(
      at(
        tmpDir,
        'tmp-dir',
        `hook.tmp-dir is ${wantTmp} but OpenVPN creates its deferral files in ${tmpDir?.args[0] ?? '/tmp'}: the daemon cannot answer connects there; add \`tmp-dir ${wantTmp}\``,
      ),
    );
  } else if (!wantTmp && (!tmpDir || /^\/(var\/)?tmp(\/|$)/.test(tmpDir.args[0] ?? ''))) {
    f.warnings.push(
      at(
        tmpDir,
        'tmp-dir',
        `OpenVPN creates its deferral files in ${tmpDir?.args[0] ?? '/tmp'}: under systemd's PrivateTmp (Debian's openvpn-server@ unit, the daemon's unit) each service has its own /tmp and connects time out; set hook.tmp-dir and OpenVPN's tmp-dir to one directory both use (flexscript init: /run/flexscript/openvpn-tmp)`,
      ),
    );
  }
}

/** 127.0.0.0/8, ::1 or localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// ---------------------------------------------------------------- what survives a daemon restart

/** Built-ins that keep kernel state or count sessions, for when plugins could not be loaded. */
const STATEFUL_BUILTINS = new Set(['firewall', 'routes', 'session-limit', 'accounting']);

/**
 * Hook mode: the live clients a restarted daemon knows come from OpenVPN's status file only.
 * Without it the first reconcile removes every live client's set elements and routes, and
 * session counts start at zero. The file itself must be readable by the daemon, written as
 * status-version 3, and in a directory only root can change (OpenVPN opens it as root).
 */
export function checkStatusFile(loaded: LoadedConfig, stateful: readonly string[], daemonUser: string | undefined, f: Findings): void {
  const { hook } = loaded.config;
  if (!hook) return;
  const where = (path: FieldPath, problem: string) =>
    loaded.problems([{ code: 'custom', path: [], message: problem, input: undefined }], path).map(formatProblem);
  const file = hook['status-file'];
  if (!file) {
    if (stateful.length > 0) {
      f.problems.push(
        ...where(
          ['hook', 'status-file'],
          `missing while ${stateful.join(', ')} keep${stateful.length === 1 ? 's' : ''} kernel state or count sessions: a restarted daemon (an upgrade, a crash and systemd's Restart=) then knows no live client, and its first reconcile removes every connected client's firewall set elements and routes; ` +
            'add status-file: /run/openvpn-flexscript/status.txt (flexscript init writes it with a tmpfiles.d drop-in that creates the file) and the status and status-version 3 lines `flexscript openvpn-config` prints',
        ),
      );
    }
    return;
  }
  checkStatusFileDirs(file, f);
  const st = stat(file);
  if (!st) {
    f.warnings.push(
      `${file}: hook.status-file does not exist (yet): OpenVPN would create it readable by root only and a restarted daemon could not read it; create it first, root's with OpenVPN's group, mode 0640 (flexscript init's tmpfiles.d drop-in does)`,
    );
    return;
  }
  if (!st.isFile()) {
    f.problems.push(
      `${file}: hook.status-file is ${st.isSymbolicLink() ? 'a symlink' : 'not a regular file'}; OpenVPN writes through it as root: replace it with a regular file, root's with OpenVPN's group, mode 0640`,
    );
    return;
  }
  const uid = daemonUser === undefined ? undefined : userIdOf(daemonUser);
  const gid = hook.group === undefined ? undefined : groupIdOf(hook.group);
  const readable = (uid !== undefined && st.uid === uid && st.mode & 0o400) || (gid !== undefined && st.gid === gid && st.mode & 0o040) || st.mode & 0o004;
  if (uid !== undefined && !readable) {
    f.problems.push(
      `${file}: owned by ${userName(st.uid)} (group ${st.gid}), mode ${octal(st.mode)}: the daemon (${daemonUser}${hook.group ? `, group ${hook.group}` : ''}) cannot read it, so a restart would cut every client off; ${hook.group ? `chgrp ${hook.group} ${file} && chmod 0640 ${file}` : `chown ${daemonUser} ${file}`} (OpenVPN keeps an existing file's owner and mode)`,
    );
  }
  if (st.mode & 0o004) f.warnings.push(`${file}: mode ${octal(st.mode)} lets every local user read who is connected from where; chmod o-r ${file}`);
  checkStatusVersion(file, f);
}

/** OpenVPN opens its status file as root with O_CREAT|O_TRUNC, following links: only root may change the directories above it. */
function checkStatusFileDirs(file: string, f: Findings): void {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const st = stat(dir);
    if (st) {
      const stickyRoot = st.uid === 0 && (st.mode & 0o1000) !== 0;
      if (st.uid !== 0 || (st.mode & 0o022 && !stickyRoot)) {
        f.problems.push(
          `${file}: OpenVPN opens its status file as root and follows links, but ${dir} is ${st.uid !== 0 ? `owned by ${userName(st.uid)}` : `writable by group or others (mode ${octal(st.mode)})`}: whoever can write there can make root overwrite any file; keep the status file in a directory only root can change (flexscript init: /run/openvpn-flexscript)`,
        );
        break;
      }
    }
    if (dir === dirname(dir)) break;
  }
}

/** The status file, if it exists and can be read here, is written as status-version 3. */
function checkStatusVersion(file: string, f: Findings): void {
  let first = '';
  try {
    first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    // unreadable by the checking user: checkStatusFile reports that when it matters
  }
  const version = first.startsWith('TITLE\t') ? 3 : first.startsWith('TITLE,') ? 2 : first.startsWith('OpenVPN CLIENT LIST') ? 1 : undefined;
  if (version !== undefined && version !== 3) {
    f.problems.push(
      `${file}: OpenVPN writes status-version ${version} here, but the daemon reads version 3 only; put \`status-version 3\` in OpenVPN's config (it comes after --status-version on OpenVPN's command line, so it wins)`,
    );
  }
}

/** Management over TCP needs a password; the daemon's side of it. */
export function checkManagementPasswords(loaded: LoadedConfig, f: Findings): void {
  loaded.config.management?.instances.forEach((instance, i) => {
    const field: FieldPath = ['management', 'instances', i];
    const problem = (path: FieldPath, text: string) =>
      f.problems.push(...loaded.problems([{ code: 'custom', path: [], message: text, input: undefined }], path).map(formatProblem));
    const pwFile = instance['password-file'];
    if (instance.port !== undefined && !pwFile) {
      problem(
        [...field, 'port'],
        `management over TCP (${instance.host ?? '127.0.0.1'} ${instance.port}) without password-file: any local user can connect to OpenVPN's management interface and admit, deny or disconnect clients; use socket: (a unix socket with management-client-user), or add password-file (and the same file as the third word of OpenVPN's management line)`,
      );
    }
    const st = pwFile ? stat(pwFile) : undefined;
    if (pwFile && st && st.mode & 0o004)
      problem([...field, 'password-file'], `${pwFile} has mode ${octal(st.mode)}: every local user can read the management password; chmod o-rwx ${pwFile}`);
  });
}

// ---------------------------------------------------------------- sockets and the runtime directory

/** A file the daemon creates with the config's mode and group. */
interface Place {
  readonly field: FieldPath;
  readonly path: string;
  readonly mode: number;
  readonly group?: string;
  readonly kind: string;
}

/** The runtime directory, ring pipe and sockets the config gives. */
function socketPlaces(config: Config): Place[] {
  const places: Place[] = [];
  if (config.hook) {
    const paths = runtimePaths(config.hook.dir);
    places.push({ field: ['hook'], path: paths.dir, mode: config.hook.mode, group: config.hook.group, kind: 'runtime directory' });
    places.push({ field: ['hook'], path: paths.ring, mode: config.hook.mode & 0o660, group: config.hook.group, kind: 'ring pipe' });
  }
  const passThrough = config.management?.['pass-through'];
  if (passThrough)
    places.push({
      field: ['management', 'pass-through'],
      path: passThrough.socket,
      mode: passThrough.mode,
      group: passThrough.group,
      kind: 'pass-through socket',
    });
  if (config.control)
    places.push({ field: ['control'], path: config.control.socket, mode: config.control.mode, group: config.control.group, kind: 'control socket' });
  if (config.metrics?.socket)
    places.push({ field: ['metrics'], path: config.metrics.socket, mode: config.metrics.mode, group: config.metrics.group, kind: 'metrics socket' });
  return places;
}

/** Modes and groups the config gives, and the files they are applied to if they exist. */
export function checkSockets(loaded: LoadedConfig, f: Findings): void {
  const { config } = loaded;
  const where = (path: FieldPath, problem: string) =>
    loaded.problems([{ code: 'custom', path: [], message: problem, input: undefined }], path).map(formatProblem);
  const places = socketPlaces(config);
  for (const p of places) {
    if (p.mode & 0o007)
      f.problems.push(...where([...p.field, 'mode'], `${octal(p.mode)} lets every local user reach the ${p.kind}; use ${octal(p.mode & ~0o007)}`));
    const gid = p.group === undefined ? undefined : groupIdOf(p.group);
    // a warning: the config may be checked before the machine it is meant for is set up
    if (p.group !== undefined && gid === undefined && p.kind !== 'ring pipe') {
      f.warnings.push(
        ...where([...p.field, 'group'], `group ${p.group} does not exist here; the daemon cannot start until it does (create it, or name OpenVPN's group)`),
      );
    }
    const parent = dirname(p.path);
    // the daemon creates its runtime directory (and parents) itself; a socket's folder must exist
    if (config.hook && parent.startsWith(config.hook.dir)) {
      if (!stat(parent)) continue;
    } else if (p.kind !== 'runtime directory' && !stat(parent)?.isDirectory()) {
      // systemd's RuntimeDirectory= creates it when the service starts
      f.warnings.push(
        `${p.path}: the ${p.kind}'s directory ${parent} does not exist (yet); the daemon cannot listen there unless it is created for the daemon's user before it starts (systemd: RuntimeDirectory=)`,
      );
      continue;
    }
    const st = stat(p.path);
    if (!st) continue;
    if (st.mode & 0o007)
      f.problems.push(
        `${p.path}: the ${p.kind} has mode ${octal(st.mode)}, reachable by every local user; chmod o-rwx ${p.path} (the daemon sets ${octal(p.mode)} at start)`,
      );
    if (gid !== undefined && st.gid !== gid)
      f.problems.push(`${p.path}: the ${p.kind} belongs to group ${st.gid}, not ${p.group}; chgrp ${p.group} ${p.path} (the daemon sets it at start)`);
  }
  const spool = config.hook && stat(runtimePaths(config.hook.dir).spool);
  if (spool && spool.mode & 0o007)
    f.problems.push(`${runtimePaths(config.hook!.dir).spool}: mode ${octal(spool.mode)} lets every local user read events (passwords included); chmod o-rwx`);
  if (config.hook && config.hook.group === undefined) {
    f.warnings.push(...where(['hook', 'group'], "not set: OpenVPN's hook client must then run as the daemon's user; set OpenVPN's group"));
  }
}

// ---------------------------------------------------------------- the root stage

/** The words of one sudoers rule: `USER HOST=(RUNAS) NOPASSWD: COMMAND ARGS...`. */
function sudoersRules(text: string): { user: string; runAs: string; command: string[]; line: number }[] {
  const rules: { user: string; runAs: string; command: string[]; line: number }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s+ALL\s*=\s*\(([^)]*)\)\s*(NOPASSWD:\s*)?(.*)$/.exec(line);
    rules.push(
      m
        ? { user: m[1]!, runAs: m[2]!.trim(), command: m[3] ? m[4]!.trim().split(/\s+/) : [], line: i + 1 }
        : { user: '', runAs: '', command: [line], line: i + 1 },
    );
  });
  return rules;
}

/** The command the daemon asks sudo to run, or undefined when root.command does not use sudo. */
export function sudoCommand(config: Config): string[] | undefined {
  const command = config.root?.command ?? ['sudo', '-n', ...rootCommand(config.root?.config)];
  if (basename(command[0] ?? '') !== 'sudo') return undefined;
  const rest = command.slice(1);
  while (rest[0]?.startsWith('-')) rest.shift();
  return rest;
}

export async function checkRoot(loaded: LoadedConfig, options: CheckOptions, daemonUser: string | undefined, f: Findings): Promise<void> {
  const root = loaded.config.root;
  if (!root) return;
  const file = root.config;
  try {
    await loadRootConfig(file);
  } catch (err) {
    const fix = (problem: string) =>
      problem.startsWith('cannot read') ? `${problem}; write it (flexscript init writes a starting one) and install it owned by root, mode 0644` : problem;
    if (err instanceof RootConfigError) f.problems.push(...err.problems.map((p) => formatProblem({ ...p, problem: fix(p.problem) })));
    else f.problems.push(`${file}: ${errorMessage(err)}; write it (flexscript init writes a starting one) and install it owned by root, mode 0644`);
  }
  const command = sudoCommand(loaded.config);
  // the paths root runs and reads: with the default command, the whole root stage
  const trusted = command?.[0] === ROOT_SCRIPT ? rootStagePaths(file) : [file];
  if (stat(file)) {
    for (const p of await findUntrustedPaths(trusted))
      f.problems.push(`${p.path}: ${p.problem}; the root stage refuses to start: chown root:root and chmod go-w it`);
  }
  if (!command) {
    f.warnings.push(`root.command does not start with sudo: the sudoers drop-in was not checked`);
    return;
  }
  const sudoers = options.sudoers ?? DEFAULT_SUDOERS;
  const st = stat(sudoers);
  if (!st) {
    f.problems.push(
      `${sudoers}: missing: the daemon cannot start the root stage; install the drop-in \`flexscript init\` writes (mode 0440), or pass --sudoers FILE`,
    );
    return;
  }
  if (st.uid !== 0 || st.mode & 0o022)
    f.problems.push(`${sudoers}: owned by uid ${st.uid}, mode ${octal(st.mode)}: sudo ignores it; chown root:root and chmod 0440 it`);
  try {
    await checkSudoers(sudoers);
  } catch (err) {
    f.problems.push(`${sudoers}: ${errorMessage(err)}; fix the syntax (visudo -f ${sudoers})`);
    return;
  }
  const expected = command.join(' ');
  const rules = sudoersRules(readFileSync(sudoers, 'utf8'));
  for (const r of rules) {
    const where = sourceLocation(sudoers, r.line);
    if (!r.user) {
      f.problems.push(`${where}: only the rule that starts the root stage belongs here; remove: ${r.command.join(' ')}`);
      continue;
    }
    if (r.command.join(' ') !== expected) {
      f.problems.push(`${where}: allows \`${r.command.join(' ')}\`, not exactly \`${expected}\`; the rule must name this one command with these arguments`);
    }
    if (r.runAs !== 'root') f.problems.push(`${where}: runs as (${r.runAs}); write (root)`);
    if (daemonUser !== undefined && r.user !== daemonUser)
      f.problems.push(`${where}: allows ${r.user}, but the daemon runs as ${daemonUser}; write the rule for ${daemonUser}`);
    else if (userIdOf(r.user) === undefined) f.problems.push(`${where}: user ${r.user} does not exist; write the rule for the daemon's user`);
  }
  if (rules.length === 0)
    f.problems.push(`${sudoers}: no rule: the daemon cannot start the root stage; add: ${daemonUser ?? 'DAEMON-USER'} ALL=(root) NOPASSWD: ${expected}`);
}

// ---------------------------------------------------------------- the command

/**
 * The daemon's user: given; in hook mode the runtime directory's owner, else OpenVPN's `user`;
 * in management mode the User= of the installed daemon unit, else OpenVPN's
 * management-client-user, else init's `flexscript` when that user exists.
 */
function daemonUserOf(config: Config, options: CheckOptions, openvpn: readonly OpenVpnDirective[]): string | undefined {
  if (options.daemonUser) return options.daemonUser;
  const last = (name: string) => openvpn.filter((d) => d.name === name).at(-1)?.args[0];
  if (config.hook) {
    const dir = stat(config.hook.dir);
    return dir ? userName(dir.uid) : last('user');
  }
  if (!config.management) return undefined;
  return installedDaemonUser(options) ?? last('management-client-user') ?? (userIdOf(INIT_DAEMON_USER) !== undefined ? INIT_DAEMON_USER : undefined);
}

/** The management-mode daemon user `flexscript init` sets up. */
const INIT_DAEMON_USER = 'flexscript';

/** Runs every check; resolves with the findings (config errors included as problems). */
export async function runChecks(file: string, options: CheckOptions = {}): Promise<Findings & { plugins?: string[]; found?: string[] }> {
  const f: Findings = { problems: [], warnings: [] };
  let loaded: LoadedConfig;
  try {
    loaded = await loadConfig(file);
  } catch (err) {
    f.problems.push(...(err instanceof ConfigError ? err.problems.map(formatProblem) : [`${file}: ${errorMessage(err)}`]));
    return f;
  }
  const { config } = loaded;
  let handled: EventName[] = [];
  let plugins: string[] | undefined;
  const found: string[] = [];
  // plugin entries the loader refused, by index
  const refused = new Set<string>();
  // plugins whose state a restart must rebuild: by their hooks once loaded, else by built-in name
  let stateful = config.plugins.filter((p) => p.enabled && p.use !== undefined && STATEFUL_BUILTINS.has(p.use)).map((p) => p.name ?? p.use!);
  try {
    const log = createLogger('silent');
    const loadedPlugins = await loadPlugins(loaded, log, offlineServices(config));
    // plugins that depend on a service reach it now (a directory: bind, bases, groups)
    try {
      for (const p of loadedPlugins) {
        if (typeof p.instance.check !== 'function') continue;
        try {
          const r = await p.instance.check();
          if (r.ok) found.push(`${p.name}: ${r.message}`);
          else f.problems.push(`${file}: plugin ${p.name}: ${r.message}`);
        } catch (err) {
          f.problems.push(`${file}: plugin ${p.name}: check failed: ${errorMessage(err)}`);
        }
      }
    } finally {
      await closePlugins(loadedPlugins, log);
    }
    handled = EVENT_NAMES.filter((e) => loadedPlugins.some((p) => typeof p.instance[e] === 'function'));
    plugins = loadedPlugins.map((p) => p.name);
    stateful = loadedPlugins.filter((p) => typeof p.instance.kernelState === 'function' || typeof p.instance.sessionsRebuilt === 'function').map((p) => p.name);
  } catch (err) {
    f.problems.push(...(err instanceof ConfigError ? err.problems.map((p: ConfigProblem) => formatProblem(p)) : [`${file}: ${errorMessage(err)}`]));
    if (err instanceof ConfigError) for (const p of err.problems) refused.add(/^plugins\[(\d+)\]/.exec(p.field)?.[1] ?? '');
  }
  // the operator's TypeScript plugins, against the published types: typos load fine and never match
  // (not the ones the loader refused: a file root must not trust is not read further)
  const tsPlugins = config.plugins
    .filter((p, i) => p.enabled && p.path !== undefined && /\.[mc]?ts$/.test(p.path) && !refused.has(String(i)))
    .map((p) => resolve(loaded.dir, p.path!));
  if (tsPlugins.length > 0) f.problems.push(...(await import('./check-plugin-types.ts')).typeCheckPlugins(tsPlugins));
  checkSockets(loaded, f);
  let openvpn: OpenVpnDirective[] = [];
  if (options.openvpnConfig) {
    let text: string | undefined;
    try {
      text = readFileSync(options.openvpnConfig, 'utf8');
    } catch (err) {
      f.problems.push(`${options.openvpnConfig}: cannot read: ${errorMessage(err)}`);
    }
    if (text !== undefined) {
      openvpn = parseOpenVpnConfig(text);
      checkOpenVpnConfig(options.openvpnConfig, text, config, handled, f);
    }
  }
  // the systemd units OpenVPN and the daemon run under, as installed
  checkUnits(config, options.openvpnConfig, openvpn, options, f);
  checkManagementPasswords(loaded, f);
  const daemonUser = daemonUserOf(config, options, openvpn);
  checkStatusFile(loaded, stateful, daemonUser, f);
  checkUsersFiles(loaded, daemonUser, f);
  checkManagementSocketDirs(loaded, f);
  await checkRoot(loaded, options, daemonUser, f);
  // the console's provider client loads only for a config with a console
  if (config.console) await (await import('./check-console.ts')).checkConsole(loaded, f, found);
  return { ...f, plugins, found };
}

export async function checkCommand(file: string, options: CheckOptions & { readonly json?: boolean } = {}): Promise<number> {
  const result = await runChecks(file, options);
  const config = result.plugins && (await loadConfig(file).catch(() => undefined))?.config;
  const checked = [
    'config',
    'plugins',
    'sockets',
    ...(options.openvpnConfig ? ['OpenVPN config'] : []),
    ...(config?.root ? ['root stage', 'sudoers'] : []),
    ...(config?.console ? ['console'] : []),
  ];
  const ok = result.problems.length === 0;
  if (options.json) {
    const { problems, warnings, plugins = [], found = [] } = result;
    process.stdout.write(`${JSON.stringify({ config: file, ok, problems, warnings, plugins, found, checked }, null, 2)}\n`);
    return ok ? EXIT.ok : EXIT.config;
  }
  // stderr carries only the problems, one per line, for scripts and editors
  for (const line of result.found ?? []) process.stdout.write(`${line}\n`);
  for (const w of result.warnings) process.stdout.write(`warning: ${w}\n`);
  for (const p of result.problems) process.stderr.write(`${p}\n`);
  if (!ok) return EXIT.config;
  process.stdout.write(`${file}: OK (${result.plugins?.length ?? 0} plugin(s): ${result.plugins?.join(', ') || 'none'}); checked: ${checked.join(', ')}\n`);
  return EXIT.ok;
}

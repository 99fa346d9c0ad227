/**
 * @module check-units
 * `flexscript check`, the systemd part: reads the units OpenVPN and the daemon run under (as
 * installed, drop-ins applied) and reports what in them would break the setup: a process limit
 * that keeps OpenVPN from starting a hook, a private /tmp holding OpenVPN's deferral files, a
 * sandbox that leaves the runtime directory, tmp-dir or status file read-only, a command line
 * that overrides the config's status lines, a user that does not match. Each finding is
 * `FILE:LINE: field: problem` at the assignment that decides it.
 */
import { dirname } from 'node:path';
import type { Config, HookConfig } from '../config/config-schema.ts';
import type { OpenVpnDirective } from '../util/openvpn-directives.ts';
import { runtimePaths } from '../sources/hook/runtime-dir.ts';
import { sandboxOf, type Sandbox } from '../systemd/sandbox.ts';
import { resolveUnit, unitNameParts, type Assignment } from '../systemd/unit-file.ts';
import { findUnit, unitName } from '../systemd/unit-locate.ts';
import type { Findings } from './findings.ts';
import { formatProblem } from '../util/source-location.ts';

/** What `flexscript init` writes into OpenVPN's unit's drop-in for hook mode. */
export const HOOK_NPROC = 512;
/**
 * Below this, hook mode is refused: the daemon (a Node.js process, a dozen threads), the scripts
 * the exec plugin runs and OpenVPN's hooks all count against OpenVPN's user's RLIMIT_NPROC.
 */
const MIN_HOOK_NPROC = 64;
const DAEMON_UNIT = 'flexscriptd.service';

export interface UnitCheckOptions {
  /** OpenVPN's unit, e.g. openvpn-server@vpn (default: from --openvpn-config's path). */
  readonly openvpnUnit?: string;
  /** The daemon's unit (default flexscriptd.service; checked when installed). */
  readonly daemonUnit?: string;
  /** Read unit files below this directory instead of the running system. */
  readonly unitRoot?: string;
}

/** Debian's units: /etc/openvpn/server/NAME.conf runs as openvpn-server@NAME, /etc/openvpn/NAME.conf as openvpn@NAME. */
function openvpnUnitFor(configPath: string): string | undefined {
  const m = /^\/etc\/openvpn\/(server\/|client\/)?([^/]+)\.conf$/.exec(configPath);
  if (!m) return undefined;
  return m[1] === 'server/' ? `openvpn-server@${m[2]}.service` : m[1] === 'client/' ? undefined : `openvpn@${m[2]}.service`;
}

/** Where init's drop-in for a unit goes. */
function dropInPath(unit: string): string {
  const { prefix, instance, type } = unitNameParts(unit);
  return `/etc/systemd/system/${instance !== undefined ? `${prefix}@.${type}` : unit}.d/flexscript.conf`;
}

const at = (a: Assignment | undefined, unitFile: string, field: string, problem: string) =>
  formatProblem({ file: a?.file ?? unitFile, line: a?.line ?? 1, field, problem });

/** A path the service needs to write, and what for. */
interface Need {
  readonly path: string;
  readonly what: string;
}

function checkWritable(sb: Sandbox, who: string, needs: readonly Need[], fix: string, f: Findings): void {
  const main = sb.unit.fragments[0]!.path;
  for (const n of needs) {
    const a = sb.access(n.path);
    if (a.access === 'writable') continue;
    const field = a.at?.key ?? 'ProtectSystem';
    f.problems.push(
      at(
        a.at,
        main,
        field,
        `${a.at ? `${a.at.key}=${a.at.value}` : 'the sandbox'} leaves ${n.path} ${a.access} to ${who}, which ${n.what}; ${fix.replace('PATH', n.path)}`,
      ),
    );
  }
}

/** The last line of OpenVPN's config with this name. */
type DirectiveOf = (name: string) => OpenVpnDirective | undefined;

/** Checks the installed units against the config and OpenVPN's config; adds findings. */
export function checkUnits(
  config: Config,
  openvpnConfigPath: string | undefined,
  openvpn: readonly OpenVpnDirective[],
  o: UnitCheckOptions,
  f: Findings,
): void {
  const one: DirectiveOf = (name) => openvpn.filter((d) => d.name === name).at(-1);
  const ov = readOpenVpnUnit(openvpnConfigPath, o, f);
  if (ov) checkOpenVpnUnit(ov, config, one, f);
  const d = readDaemonUnit(o, f);
  if (!d) return;
  checkDaemonUser(d, config, one, f);
  checkDaemonWritable(d, config, f);
  checkDaemonReachesOpenVpn(d, config, f);
}

// ---------------------------------------------------------------- OpenVPN's unit

/** OpenVPN's unit as installed, drop-ins applied; undefined when it is not known, not installed or masked. */
function readOpenVpnUnit(openvpnConfigPath: string | undefined, o: UnitCheckOptions, f: Findings): Sandbox | undefined {
  const ovName = o.openvpnUnit ? unitName(o.openvpnUnit) : openvpnConfigPath ? openvpnUnitFor(openvpnConfigPath) : undefined;
  if (!ovName) return undefined;
  const found = findUnit(ovName, o.unitRoot);
  if ('missing' in found) {
    if (o.openvpnUnit) f.problems.push(`${ovName}: no such unit installed; name OpenVPN's unit with --openvpn-unit (e.g. openvpn-server@NAME)`);
    return undefined;
  }
  if (found.masked) {
    f.problems.push(`${found.masked}: ${ovName} is masked: OpenVPN does not start; systemctl unmask ${ovName}`);
    return undefined;
  }
  return sandboxOf(resolveUnit(ovName, found.fragments));
}

/** OpenVPN's unit: it starts as root, its sandbox lets the mode work, its command line leaves the config's lines alone. */
function checkOpenVpnUnit(ov: Sandbox, config: Config, one: DirectiveOf, f: Findings): void {
  const main = ov.unit.fragments[0]!.path;
  const dropIn = dropInPath(ov.unit.name);
  if (ov.user && ov.user.value !== 'root' && ov.user.value !== '0') {
    f.problems.push(
      at(
        ov.user,
        main,
        'User',
        `OpenVPN's unit starts it as ${ov.user.value}: it must start as root to open its tun device and drops to its \`user\` itself; remove User= (an empty \`User=\` in ${dropIn})`,
      ),
    );
  }
  if (config.hook) checkOpenVpnHookSandbox(ov, config.hook, one, f);
  if (config.management) checkOpenVpnManagementSocket(ov, one, f);
  checkOpenVpnCommandLine(ov, config.hook, f);
}

/** Hook mode: OpenVPN may fork its hooks and write the spool, its deferral files and the status file. */
function checkOpenVpnHookSandbox(ov: Sandbox, hook: HookConfig, one: DirectiveOf, f: Findings): void {
  const main = ov.unit.fragments[0]!.path;
  const dropIn = dropInPath(ov.unit.name);
  const openvpnUser = one('user')?.args[0];
  const limit = ov.limitNproc;
  if (limit && limit.value < MIN_HOOK_NPROC) {
    f.problems.push(
      at(
        limit.at,
        main,
        'LimitNPROC',
        `${limit.at.value}: in hook mode the daemon runs as OpenVPN's user${openvpnUser ? ` (${openvpnUser})` : ''}, and RLIMIT_NPROC counts every process and thread of that user (the daemon alone has more than 10): OpenVPN cannot fork a hook ("openvpn_execve: unable to fork"), which it treats as fatal: it exits at the first client's connect; install the drop-in flexscript init writes as ${dropIn} (LimitNPROC=${HOOK_NPROC}), then systemctl daemon-reload`,
      ),
    );
  }
  // where OpenVPN creates its deferral files: the config's tmp-dir, else the command line's, else /tmp
  const words = ov.execStart?.words ?? [];
  const cmdTmp = words[words.indexOf('--tmp-dir') + 1];
  const tmpDir = one('tmp-dir')?.args[0] ?? (words.includes('--tmp-dir') ? cmdTmp : undefined) ?? '/tmp';
  const tmpAccess = ov.access(tmpDir);
  if (tmpAccess.privateTmp) {
    f.problems.push(
      at(
        ov.privateTmp.at,
        main,
        'PrivateTmp',
        `OpenVPN's /tmp is private to its unit, and its deferral files go to ${tmpDir}: the daemon never sees them and every connect times out; set OpenVPN's tmp-dir and hook.tmp-dir to a directory both units can write (flexscript init: /run/flexscript/openvpn-tmp)`,
      ),
    );
  }
  const needs: Need[] = [
    { path: runtimePaths(hook.dir).spool, what: 'is where its hooks hand events to the daemon' },
    ...(tmpAccess.privateTmp ? [] : [{ path: tmpDir, what: 'is where OpenVPN creates its deferral files' }]),
    ...(hook['status-file'] ? [{ path: dirname(hook['status-file']), what: 'holds the status file OpenVPN writes' }] : []),
  ];
  checkWritable(ov, "OpenVPN's unit", needs, `add ReadWritePaths=PATH to ${dropIn}`, f);
}

/** Management mode: OpenVPN may create its management socket where the daemon reaches it. */
function checkOpenVpnManagementSocket(ov: Sandbox, one: DirectiveOf, f: Findings): void {
  const mgmt = one('management');
  if (mgmt?.args[1] !== 'unix' || !mgmt.args[0]) return;
  const main = ov.unit.fragments[0]!.path;
  const dropIn = dropInPath(ov.unit.name);
  checkWritable(
    ov,
    "OpenVPN's unit",
    [{ path: dirname(mgmt.args[0]), what: 'is where OpenVPN creates its management socket' }],
    `add ReadWritePaths=PATH to ${dropIn}`,
    f,
  );
  if (ov.access(mgmt.args[0]).privateTmp) {
    f.problems.push(
      at(
        ov.privateTmp.at,
        main,
        'PrivateTmp',
        `OpenVPN's management socket ${mgmt.args[0]} is in its private /tmp, which the daemon cannot reach; put it in /run/openvpn`,
      ),
    );
  }
}

/** OpenVPN reads its config after the command line: a --status given after --config wins over the config's status lines. */
function checkOpenVpnCommandLine(ov: Sandbox, hook: HookConfig | undefined, f: Findings): void {
  const words = ov.execStart?.words ?? [];
  const configAt = words.indexOf('--config');
  if (!hook?.['status-file'] || !ov.execStart || configAt < 0) return;
  const main = ov.unit.fragments[0]!.path;
  const dropIn = dropInPath(ov.unit.name);
  for (const opt of ['--status', '--status-version', '--tmp-dir']) {
    const i = words.indexOf(opt, configAt + 1);
    if (i > configAt) {
      f.problems.push(
        at(
          ov.execStart.at,
          main,
          'ExecStart',
          `${opt} ${words[i + 1] ?? ''} comes after --config, so it overrides the config's ${opt.slice(2)} line (the daemon then reads the wrong file, or a status-version it cannot read); move ${opt} before --config or drop it (an empty \`ExecStart=\` and a new one in ${dropIn})`,
        ),
      );
    }
  }
}

// ---------------------------------------------------------------- the daemon's unit

/** The daemon's unit as installed, drop-ins applied; undefined when it is not installed or masked. */
/** The User= of the daemon's unit as installed, if any. */
export function installedDaemonUser(o: UnitCheckOptions): string | undefined {
  return readDaemonUnit(o, { problems: [], warnings: [] })?.user?.value || undefined;
}

function readDaemonUnit(o: UnitCheckOptions, f: Findings): Sandbox | undefined {
  const dName = unitName(o.daemonUnit ?? DAEMON_UNIT);
  const found = findUnit(dName, o.unitRoot);
  if ('missing' in found) {
    if (o.daemonUnit) f.problems.push(`${dName}: no such unit installed; install the unit flexscript init writes`);
    return undefined;
  }
  if (found.masked) {
    f.problems.push(`${found.masked}: ${dName} is masked: the daemon does not start; systemctl unmask ${dName}`);
    return undefined;
  }
  return sandboxOf(resolveUnit(dName, found.fragments));
}

/** The daemon's user, group and process limit, against the mode and OpenVPN's user. */
function checkDaemonUser(d: Sandbox, config: Config, one: DirectiveOf, f: Findings): void {
  const { hook, management } = config;
  const openvpnUser = one('user')?.args[0];
  const openvpnGroup = one('group')?.args[0];
  const main = d.unit.fragments[0]!.path;
  const user = d.user?.value;
  if (!user || user === 'root' || user === '0') {
    f.problems.push(
      at(
        d.user,
        main,
        'User',
        `${user ? 'root' : 'not set (root)'}: the daemon runs unprivileged; root work goes through the root stage; set User= (hook mode: OpenVPN's user; management mode: flexscript)`,
      ),
    );
  } else if (hook && openvpnUser && user !== openvpnUser) {
    f.problems.push(
      at(
        d.user,
        main,
        'User',
        `${user}, but OpenVPN runs its hooks as ${openvpnUser}: in hook mode the daemon runs as OpenVPN's user (the deferral files OpenVPN creates are readable by that user only); set User=${openvpnUser}`,
      ),
    );
  } else if (management && !hook) {
    const clientUser = one('management-client-user')?.args[0];
    if (clientUser && clientUser !== user) {
      f.problems.push(
        at(d.user, main, 'User', `${user}, but OpenVPN's management-client-user is ${clientUser}: OpenVPN refuses the daemon's connection; make them the same`),
      );
    }
  }
  const group = d.group?.value;
  const wantGroup = hook ? (hook.group ?? openvpnGroup) : undefined;
  if (hook && wantGroup && group !== wantGroup) {
    f.problems.push(
      at(
        d.group ?? d.user,
        main,
        'Group',
        `${group ?? "not set (the user's own group)"}, but the hook client writes into the runtime directory as group ${wantGroup}; set Group=${wantGroup}`,
      ),
    );
  }
  if (hook && d.limitNproc && d.limitNproc.value < MIN_HOOK_NPROC) {
    f.problems.push(
      at(d.limitNproc.at, main, 'LimitNPROC', `${d.limitNproc.at.value}: the daemon alone has more threads than that; remove it or raise it to ${HOOK_NPROC}`),
    );
  }
}

/** The paths the daemon writes: its runtime directory, hook.tmp-dir, its sockets and store. */
function checkDaemonWritable(d: Sandbox, config: Config, f: Findings): void {
  const { hook } = config;
  const main = d.unit.fragments[0]!.path;
  const needs: Need[] = [];
  if (hook) {
    needs.push({ path: runtimePaths(hook.dir).spool, what: 'is its runtime directory (spool, ring pipe)' });
    if (hook['tmp-dir']) needs.push({ path: hook['tmp-dir'], what: "answers connects in OpenVPN's deferral files there (hook.tmp-dir)" });
    if (hook['tmp-dir'] && d.access(hook['tmp-dir']).privateTmp) {
      f.problems.push(
        at(
          d.privateTmp.at,
          main,
          'PrivateTmp',
          `the daemon's /tmp is its own, but hook.tmp-dir is ${hook['tmp-dir']}: OpenVPN's deferral files are not there; use a directory both units share (flexscript init: /run/flexscript/openvpn-tmp)`,
        ),
      );
    }
  }
  for (const [path, what] of [
    [config.control?.socket, 'listens on its control socket there'],
    [config.management?.['pass-through']?.socket, 'listens on its pass-through socket there'],
    [config.metrics?.socket, 'listens on its metrics socket there'],
    [config.store?.sqlite, 'keeps its accounting store there'],
  ] as const) {
    if (path) needs.push({ path: dirname(path), what });
  }
  checkWritable(d, "the daemon's unit", needs, 'add ReadWritePaths=PATH (or RuntimeDirectory=/StateDirectory=) to the unit', f);
}

/** What the daemon reads of OpenVPN's: its management sockets and status file. */
function checkDaemonReachesOpenVpn(d: Sandbox, config: Config, f: Findings): void {
  const { hook, management } = config;
  const main = d.unit.fragments[0]!.path;
  if (management) {
    for (const i of management.instances) {
      if (i.socket && d.access(i.socket).access === 'inaccessible') {
        const a = d.access(i.socket);
        f.problems.push(at(a.at, main, a.at?.key ?? 'InaccessiblePaths', `hides ${i.socket}, OpenVPN's management socket, from the daemon; remove it`));
      } else if (i.socket && d.access(i.socket).privateTmp) {
        f.problems.push(
          at(
            d.privateTmp.at,
            main,
            'PrivateTmp',
            `the daemon's /tmp is its own, but OpenVPN's management socket is ${i.socket}; put the socket in /run/openvpn`,
          ),
        );
      }
    }
  }
  if (hook?.['status-file'] && d.access(hook['status-file']).access === 'inaccessible') {
    const a = d.access(hook['status-file']);
    f.problems.push(
      at(
        a.at,
        main,
        a.at?.key ?? 'InaccessiblePaths',
        `hides ${hook['status-file']} (hook.status-file) from the daemon: a restart would cut every client off; remove it`,
      ),
    );
  }
}

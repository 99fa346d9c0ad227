/**
 * Runs a systemd service's command the way systemd would sandbox it, on a machine where systemd
 * is not PID 1: the unit file and its drop-ins are read (src/systemd), then the command starts
 * in its own mount namespace (`unshare --mount --propagation private`) with
 * - the test's "machine": private directories bound over /run, /var/lib, /var/log and
 *   /etc/openvpn/server (and files such as /etc/passwd), shared by every unit of one test;
 * - ProtectSystem= (strict: every mount read-only but /dev, /proc, /sys; true: /usr, /boot,
 *   /efi; full: /etc too), ProtectHome=, PrivateTmp= (a fresh tmpfs on /tmp and /var/tmp);
 * - ReadWritePaths= and the directories RuntimeDirectory=, StateDirectory=, LogsDirectory=
 *   create (with their owner and mode), writable again;
 * - WorkingDirectory=, UMask=, LimitNPROC= (prlimit), CapabilityBoundingSet=, User=/Group=
 *   (setpriv, with the user's groups), and ExecStart= with specifiers expanded.
 * The process keeps its pid through every exec, so stopping it ends the namespace too.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO } from '../../src/lab/daemon-process.ts';
import { startProcess, type ManagedProcess } from '../../src/lab/openvpn-process.ts';
import { sandboxOf, type Sandbox } from '../../src/systemd/sandbox.ts';
import { resolveUnit } from '../../src/systemd/unit-file.ts';
import { locateUnitFiles } from '../../src/systemd/unit-locate.ts';

/** A private path of the test's machine, bound over a real one in every namespace. */
export interface MachineBind {
  readonly target: string;
  readonly source: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Mount points of this process's namespace (the new one starts as a copy). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

const under = (path: string, dir: string) => dir === '/' || path === dir || path.startsWith(`${dir}/`);

/** Shell lines that set up the machine's private paths. */
export function machineScript(binds: readonly MachineBind[]): string[] {
  return binds.map((b) => `mount --bind ${q(b.source)} ${q(b.target)}`);
}

/** Runs a command in the machine (its private paths, nothing else sandboxed); for tmpfiles, check. */
export function inMachine(binds: readonly MachineBind[], argv: readonly string[]) {
  const script = [...machineScript(binds), `exec ${argv.map(q).join(' ')}`].join('\n');
  return spawnSync('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-ec', script], { encoding: 'utf8' });
}

/** The shell script that sandboxes and starts the unit's command. */
export function sandboxScript(sb: Sandbox, binds: readonly MachineBind[]): string {
  const lines = ['set -e', ...machineScript(binds)];
  const user = sb.user?.value;
  const group = sb.group?.value ?? (user ? `$(id -gn ${q(user)})` : 'root');
  // directories systemd creates for the service, owned by its user
  for (const d of sb.createdDirs) {
    lines.push(`mkdir -p ${q(d.path)}`, `chown ${q(user ?? 'root')}:${group} ${q(d.path)}`, `chmod ${d.mode.toString(8)} ${q(d.path)}`);
  }
  const mounts = [...mountPoints(), ...binds.map((b) => b.target)];
  const readOnly = (root: string, all: boolean) => {
    // a path that is no mount point gets one, so it can be made read-only alone
    if (!mounts.includes(root)) lines.push(`if [ -e ${q(root)} ]; then mount --bind ${q(root)} ${q(root)}; mount -o remount,bind,ro ${q(root)}; fi`);
    for (const m of new Set(mounts)) {
      if (!under(m, root)) continue;
      if (all && ['/dev', '/proc', '/sys'].some((api) => under(m, api))) continue;
      // some mounts (another namespace's files, say) refuse a remount: they are not this test's concern
      lines.push(`mount -o remount,bind,ro ${q(m)} 2>/dev/null || true`);
    }
  };
  const ps = sb.protectSystem.value;
  if (ps === 'strict') readOnly('/', true);
  else if (ps !== 'no') for (const p of ps === 'full' ? ['/usr', '/boot', '/efi', '/etc'] : ['/usr', '/boot', '/efi']) readOnly(p, false);
  // The product under test may itself live where the unit sees an empty tmpfs (a checkout in
  // /tmp or a home directory, as a CI run may make): a server installs it elsewhere, so it is
  // bound back into the empty tree, and the tmpfs above it lets OpenVPN's user walk through.
  const repo = REPO.replace(/\/$/, '');
  const hidden: { path: string; options: string }[] = [];
  if (sb.protectHome.value !== 'no') {
    const how = sb.protectHome.value === 'yes' ? 'ro,mode=000' : sb.protectHome.value === 'read-only' ? 'ro,mode=755' : 'mode=755';
    for (const p of ['/home', '/root', '/run/user']) hidden.push({ path: p, options: how });
  }
  if (sb.privateTmp.value) for (const p of ['/tmp', '/var/tmp']) hidden.push({ path: p, options: 'mode=1777' });
  const keeper = hidden.find((h) => under(repo, h.path));
  if (keeper) lines.push('mount -t tmpfs -o mode=700 tmpfs /mnt', 'mkdir /mnt/keep', `mount --bind ${q(repo)} /mnt/keep`);
  for (const h of hidden) {
    if (h !== keeper) {
      lines.push(`if [ -d ${q(h.path)} ]; then mount -t tmpfs -o ${h.options} tmpfs ${q(h.path)}; fi`);
      continue;
    }
    const mode = h.options.includes('mode=1777') ? 'mode=1777' : 'mode=755';
    lines.push(`mount -t tmpfs -o ${mode} tmpfs ${q(h.path)}`, `mkdir -p ${q(repo)}`, `chmod -R a+rx ${q(h.path)}`, `mount --bind /mnt/keep ${q(repo)}`);
    if (h.options.split(',').includes('ro')) lines.push(`mount -o remount,ro ${q(h.path)}`);
  }
  for (const r of sb.rules) {
    if (r.at === undefined || r.at.key === 'ProtectSystem' || r.at.key === 'ProtectHome') continue;
    if (r.access === 'writable') lines.push(`if [ -e ${q(r.path)} ]; then mount --bind ${q(r.path)} ${q(r.path)}; mount -o remount,bind,rw ${q(r.path)}; fi`);
    else if (r.access === 'read-only') lines.push(`mount --bind ${q(r.path)} ${q(r.path)}`, `mount -o remount,bind,ro ${q(r.path)}`);
    else lines.push(`mount -t tmpfs -o ro,mode=000 tmpfs ${q(r.path)}`);
  }
  if (sb.workingDirectory) lines.push(`cd ${q(sb.workingDirectory)}`);
  if (sb.umask !== undefined) lines.push(`umask ${sb.umask.toString(8).padStart(4, '0')}`);
  const argv: string[] = [];
  if (sb.limitNproc) argv.push('prlimit', `--nproc=${Number.isFinite(sb.limitNproc.value) ? sb.limitNproc.value : 'unlimited'}`, '--');
  const setpriv: string[] = [];
  if (user && user !== 'root') setpriv.push('--reuid', user, '--regid', sb.group?.value ?? user, '--init-groups');
  if (sb.capabilities) setpriv.push('--bounding-set', ['-all', ...sb.capabilities.map((c) => `+${c}`)].join(','));
  if (setpriv.length) argv.push('setpriv', ...setpriv, '--');
  if (!sb.execStart) throw new Error(`${sb.unit.name}: no ExecStart=`);
  lines.push(`exec ${[...argv, ...sb.execStart.words].map(q).join(' ')}`);
  return lines.join('\n');
}

/** Reads a unit below `unitRoot` and starts its command in its sandbox; output goes to `logPath`. */
export function startUnit(o: { unit: string; unitRoot: string; binds: readonly MachineBind[]; logPath: string }): ManagedProcess & { sandbox: Sandbox } {
  const found = locateUnitFiles(o.unit, o.unitRoot);
  if ('missing' in found || found.masked) throw new Error(`${o.unit}: not found below ${o.unitRoot}`);
  const sb = sandboxOf(resolveUnit(o.unit, found.fragments));
  const script = sandboxScript(sb, o.binds);
  const proc = startProcess('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script], o.logPath);
  // the handle's getters (running) must stay live
  return Object.defineProperties({}, { ...Object.getOwnPropertyDescriptors(proc), sandbox: { value: sb, enumerable: true } }) as ManagedProcess & {
    sandbox: Sandbox;
  };
}

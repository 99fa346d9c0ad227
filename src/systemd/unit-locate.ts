/**
 * @module unit-locate
 * Finds the files of an installed unit: through `systemctl cat` when systemd runs the machine,
 * else (a container, a chroot, a test's root) by systemd's own search rules: the unit file from
 * the first of /etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system,
 * /lib/systemd/system, /usr/lib/systemd/system that has it (a template `NAME@.service` for an
 * instance), and every `*.conf` in the `.d` directories of the unit, its template, its dashed
 * prefixes and its type, a name in a higher directory hiding the same name in a lower one,
 * applied in the order of their names.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { unitNameParts, type UnitFragment } from './unit-file.ts';

const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];

/** A unit's files, or why there are none. */
export type LocatedUnit = { readonly fragments: UnitFragment[]; readonly masked?: string } | { readonly missing: true };

const readText = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** The `.d` directory names systemd reads drop-ins from for a unit, lowest precedence first. */
function dropInDirNames(name: string): string[] {
  const { prefix, instance, type } = unitNameParts(name);
  const names = [`${type}.d`];
  // foo-bar-baz.service reads foo-.service.d and foo-bar-.service.d too
  const dashes = prefix.split('-');
  for (let i = 1; i < dashes.length; i++) names.push(`${dashes.slice(0, i).join('-')}-.${type}.d`);
  if (instance !== undefined) names.push(`${prefix}@.${type}.d`);
  names.push(`${name}.d`);
  return names;
}

/** Reads a unit's files below `root` (default `/`) without asking systemd. */
export function locateUnitFiles(name: string, root = '/'): LocatedUnit {
  const { prefix, instance, type } = unitNameParts(name);
  const candidates = instance !== undefined ? [name, `${prefix}@.${type}`] : [name];
  let main: string | undefined;
  let masked: string | undefined;
  // for each name the first directory wins; the instance's own file before its template's
  search: for (const candidate of candidates) {
    for (const dir of UNIT_DIRS) {
      const path = join(root, dir, candidate);
      if (!existsSync(path)) continue;
      let target = path;
      try {
        target = realpathSync(path);
      } catch {
        // a dangling link: the unit is not there
      }
      if (target === '/dev/null' || target === join(root, 'dev/null')) {
        masked = path;
        break search;
      }
      if (!isFile(target)) continue;
      main = path;
      break search;
    }
  }
  if (masked) return { fragments: [], masked };
  if (!main) return { missing: true };
  const fragments: UnitFragment[] = [{ path: main, text: readText(main) ?? '' }];
  // name of the drop-in → its path in the highest-precedence directory that has it
  const dropIns = new Map<string, string>();
  for (const dir of [...UNIT_DIRS].reverse()) {
    for (const d of dropInDirNames(name)) {
      const full = join(root, dir, d);
      let entries: string[] = [];
      try {
        entries = readdirSync(full);
      } catch {
        continue;
      }
      for (const e of entries.filter((e) => e.endsWith('.conf'))) dropIns.set(e, join(full, e));
    }
  }
  for (const file of [...dropIns.keys()].sort()) {
    const path = dropIns.get(file)!;
    const text = readText(path);
    if (text !== undefined) fragments.push({ path, text });
  }
  return { fragments };
}

/** Whether systemd manages this machine (sd_booted: /run/systemd/system exists). */
const systemdRuns = () => existsSync('/run/systemd/system');

/** The files `systemctl cat` names, read from disk; undefined when systemctl cannot tell. */
function systemctlUnitFiles(name: string): LocatedUnit | undefined {
  const r = spawnSync('systemctl', ['cat', '--no-pager', '--', name], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SYSTEMD_COLORS: '0' },
  });
  if (r.error) return undefined;
  if (r.status !== 0) return /No files found|not found/i.test(r.stderr) ? { missing: true } : undefined;
  const fragments: UnitFragment[] = [];
  // each file's text follows a "# /path" line (the first line, or one after a blank line)
  const lines = r.stdout.split('\n');
  lines.forEach((line, i) => {
    const m = /^# (\/\S.*)$/.exec(line);
    if (!m || (i > 0 && lines[i - 1] !== '')) return;
    const path = m[1]!.trim();
    const text = isFile(path) ? readText(path) : undefined;
    if (text !== undefined && !fragments.some((f) => f.path === path)) fragments.push({ path, text });
  });
  if (fragments.length === 0) return undefined;
  // systemctl prints the unit file first, then the drop-ins in the order they apply
  return { fragments };
}

/** A unit's files on this machine: systemctl when systemd runs (and no root is given), else the files. */
export function findUnit(name: string, root?: string): LocatedUnit {
  if (root === undefined && systemdRuns()) {
    const viaSystemctl = systemctlUnitFiles(name);
    if (viaSystemctl) return viaSystemctl;
  }
  return locateUnitFiles(name, root ?? '/');
}

/** The full unit name (`.service` added when no type is given). */
export const unitName = (name: string) => (/\.(service|socket|timer|mount|path|target)$/.test(name) ? name : `${basename(name)}.service`);

/**
 * @module sandbox
 * What a service's sandbox settings make of the file system and its limits: which paths it can
 * write, which it only reads, which it cannot see, whether its /tmp is its own, its process
 * limit, its user and its command. Each answer names the assignment that decided it, so a
 * finding points at FILE:LINE. Models ProtectSystem=, ProtectHome=, PrivateTmp=,
 * ReadWritePaths=, ReadOnlyPaths=, InaccessiblePaths=, the *Directory= settings (which systemd
 * makes writable), LimitNPROC=, User=, Group=, UMask=, ExecStart= and WorkingDirectory=.
 */
import { commandWords, pathEntry, splitWords, type Assignment, type ResolvedUnit } from './unit-file.ts';

type PathAccess = 'writable' | 'read-only' | 'inaccessible';

interface PathRule {
  readonly path: string;
  readonly access: PathAccess;
  /** The assignment behind the rule (undefined: systemd's default). */
  readonly at: Assignment | undefined;
}

export interface Sandbox {
  readonly unit: ResolvedUnit;
  readonly protectSystem: { value: 'no' | 'yes' | 'full' | 'strict'; at?: Assignment };
  readonly protectHome: { value: 'no' | 'yes' | 'read-only' | 'tmpfs'; at?: Assignment };
  readonly privateTmp: { value: boolean; at?: Assignment };
  /** Every path rule, the base rules of ProtectSystem=/ProtectHome= first. */
  readonly rules: readonly PathRule[];
  /** Directories systemd creates for the service (RuntimeDirectory= and the like), with their mode. */
  readonly createdDirs: readonly { path: string; mode: number; at: Assignment }[];
  /** RLIMIT_NPROC (soft limit); undefined when not set (systemd's default, no limit worth a check). */
  readonly limitNproc: { value: number; at: Assignment } | undefined;
  readonly user: Assignment | undefined;
  readonly group: Assignment | undefined;
  readonly umask: number | undefined;
  readonly workingDirectory: string | undefined;
  /** ExecStart= words with specifiers expanded (the last command when several are given). */
  readonly execStart: { words: string[]; at: Assignment } | undefined;
  /** Capability names (lowercase, no `cap_`) when CapabilityBoundingSet= restricts them. */
  readonly capabilities: string[] | undefined;
  /** How the service sees a path: the most specific rule wins. */
  access(path: string): { access: PathAccess; at: Assignment | undefined; privateTmp: boolean };
}

const TRUE = /^(1|yes|true|on)$/i;
const FALSE = /^(0|no|false|off)$/i;

const under = (path: string, dir: string) => dir === '/' || path === dir || path.startsWith(`${dir.replace(/\/$/, '')}/`);

/** RLIMIT values: a number, `infinity`, or `SOFT:HARD` (the soft one limits). */
function parseLimit(value: string): number {
  const soft = value.split(':')[0]!.trim();
  if (/^infinity$/i.test(soft)) return Number.POSITIVE_INFINITY;
  const n = Number(soft);
  return Number.isFinite(n) ? n : Number.NaN;
}

export function sandboxOf(unit: ResolvedUnit): Sandbox {
  const S = 'Service';
  const ps = unit.get(S, 'ProtectSystem');
  const protectSystem = {
    value: !ps || FALSE.test(ps.value) ? 'no' : TRUE.test(ps.value) ? 'yes' : (ps.value as 'full' | 'strict'),
    at: ps,
  } as Sandbox['protectSystem'];
  const ph = unit.get(S, 'ProtectHome');
  const protectHome = {
    value: !ph || FALSE.test(ph.value) ? 'no' : TRUE.test(ph.value) ? 'yes' : (ph.value as 'read-only' | 'tmpfs'),
    at: ph,
  } as Sandbox['protectHome'];
  const pt = unit.get(S, 'PrivateTmp');
  const privateTmp = { value: !!pt && TRUE.test(pt.value), at: pt };

  const rules: PathRule[] = [];
  const base = (paths: string[], access: PathAccess, at: Assignment | undefined) => {
    for (const path of paths) rules.push({ path, access, at });
  };
  if (protectSystem.value === 'strict') base(['/'], 'read-only', ps);
  else if (protectSystem.value !== 'no') base(protectSystem.value === 'full' ? ['/usr', '/boot', '/efi', '/etc'] : ['/usr', '/boot', '/efi'], 'read-only', ps);
  // API file systems stay as they are under strict
  if (protectSystem.value === 'strict') base(['/dev', '/proc', '/sys'], 'writable', ps);
  if (protectHome.value !== 'no')
    base(['/home', '/root', '/run/user'], protectHome.value === 'yes' ? 'inaccessible' : protectHome.value === 'read-only' ? 'read-only' : 'writable', ph);
  const listed = (key: string, access: PathAccess) => {
    for (const a of unit.list(S, key)) for (const w of splitWords(unit.expand(a.value))) rules.push({ path: pathEntry(w), access, at: a });
  };
  listed('ReadWritePaths', 'writable');
  listed('ReadOnlyPaths', 'read-only');
  listed('InaccessiblePaths', 'inaccessible');
  const createdDirs: { path: string; mode: number; at: Assignment }[] = [];
  const dirs: [string, string, number][] = [
    ['RuntimeDirectory', '/run', 0o755],
    ['StateDirectory', '/var/lib', 0o755],
    ['CacheDirectory', '/var/cache', 0o755],
    ['LogsDirectory', '/var/log', 0o755],
    ['ConfigurationDirectory', '/etc', 0o755],
  ];
  for (const [key, root, defaultMode] of dirs) {
    const modeAt = unit.get(S, key.replace('Directory', 'DirectoryMode'));
    const mode = modeAt ? parseInt(modeAt.value, 8) : defaultMode;
    for (const a of unit.list(S, key)) {
      for (const w of splitWords(unit.expand(a.value))) {
        const path = `${root}/${w.split(':')[0]}`;
        rules.push({ path, access: 'writable', at: a });
        createdDirs.push({ path, mode, at: a });
      }
    }
  }

  const np = unit.get(S, 'LimitNPROC');
  const exec = unit.list(S, 'ExecStart').at(-1);
  const caps = unit.list(S, 'CapabilityBoundingSet');
  const um = unit.get(S, 'UMask');
  return {
    unit,
    protectSystem,
    protectHome,
    privateTmp,
    rules,
    createdDirs,
    limitNproc: np ? { value: parseLimit(np.value), at: np } : undefined,
    user: unit.get(S, 'User'),
    group: unit.get(S, 'Group'),
    umask: um ? parseInt(um.value, 8) : undefined,
    workingDirectory: unit.get(S, 'WorkingDirectory') ? unit.expand(unit.get(S, 'WorkingDirectory')!.value).replace(/^-/, '') : undefined,
    execStart: exec ? { words: commandWords(unit.expand(exec.value)), at: exec } : undefined,
    capabilities: caps.length ? caps.flatMap((a) => splitWords(a.value)).map((c) => c.toLowerCase().replace(/^cap_/, '')) : undefined,
    access(path) {
      const privateTmpHere = privateTmp.value && (under(path, '/tmp') || under(path, '/var/tmp'));
      let best: PathRule | undefined;
      for (const r of rules) if (under(path, r.path) && (!best || r.path.length >= best.path.length)) best = r;
      if (privateTmpHere && (!best || best.path.length <= 4)) return { access: 'writable', at: privateTmp.at, privateTmp: true };
      return { access: best?.access ?? 'writable', at: best?.at, privateTmp: privateTmpHere };
    },
  };
}

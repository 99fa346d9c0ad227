/**
 * @module unit-file
 * systemd unit files as systemd reads them: a unit file and its drop-ins, applied in order,
 * each assignment remembered with its file and line so a finding can point at it. Pure: the
 * text comes in, nothing is read here (see unit-locate.ts).
 *
 * Rules followed (systemd.unit(5), systemd.exec(5)): `[Section]` headers; `Key=value` lines;
 * `#` and `;` start comments; a line ending in `\` continues on the next; drop-ins apply after
 * the unit file, in the order of their file names; a list setting (ReadWritePaths=,
 * ExecStart=, RuntimeDirectory=, ...) accumulates and an empty assignment (`KEY=`) empties it;
 * any other setting takes its last assignment, and `KEY=` returns it to the default.
 */

/** One `Key=value` line. */
export interface Assignment {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

/** One file of a unit: the unit file itself or a drop-in. */
export interface UnitFragment {
  readonly path: string;
  readonly text: string;
}

/** Splits one file into assignments; continuation lines are joined (the line is the first one's). */
function parseUnitText(path: string, text: string): Assignment[] {
  const out: Assignment[] = [];
  const lines = text.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = (lines[i] ?? '').replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      const next = (lines[++i] ?? '').replace(/\r$/, '');
      // comment lines inside a continuation are skipped, as systemd does
      if (/^\s*[#;]/.test(next)) {
        line = `${line.slice(0, -1)}\\`;
        continue;
      }
      line = `${line.slice(0, -1)} ${next}`;
    }
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file: path, line: start + 1 });
  }
  return out;
}

/** What a unit's settings come to once its files are applied in order. */
export interface ResolvedUnit {
  /** The unit's name, e.g. `openvpn-server@vpn.service`. */
  readonly name: string;
  readonly fragments: readonly UnitFragment[];
  /** The last assignment of a single-valued setting, or undefined when unset (or reset by `KEY=`). */
  get(section: string, key: string): Assignment | undefined;
  /** The assignments of a list setting after its last reset, each value split into words where the setting takes several. */
  list(section: string, key: string): Assignment[];
  /** Expands %i, %I, %n, %N, %p, %t, %S, %L, %C, %h, %% in a value (system units). */
  expand(value: string): string;
}

/** The unit's name split: `openvpn-server@vpn.service` gives prefix openvpn-server, instance vpn. */
export function unitNameParts(name: string): { prefix: string; instance: string | undefined; type: string } {
  const dot = name.lastIndexOf('.');
  const type = dot >= 0 ? name.slice(dot + 1) : 'service';
  const stem = dot >= 0 ? name.slice(0, dot) : name;
  const at = stem.indexOf('@');
  return at >= 0 ? { prefix: stem.slice(0, at), instance: stem.slice(at + 1) || undefined, type } : { prefix: stem, instance: undefined, type };
}

/** Applies a unit file and its drop-ins (already in systemd's order) into one view. */
export function resolveUnit(name: string, fragments: readonly UnitFragment[]): ResolvedUnit {
  const all = fragments.flatMap((f) => parseUnitText(f.path, f.text));
  const { prefix, instance } = unitNameParts(name);
  const unescapeUnitName = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/-/g, '/');
  const specifiers: Record<string, string> = {
    i: instance ?? '',
    I: unescapeUnitName(instance ?? ''),
    n: name,
    N: name.replace(/\.[^.]+$/, ''),
    p: prefix,
    P: unescapeUnitName(prefix),
    t: '/run',
    S: '/var/lib',
    L: '/var/log',
    C: '/var/cache',
    E: '/etc',
    T: '/tmp',
    V: '/var/tmp',
    h: '/root',
    '%': '%',
  };
  return {
    name,
    fragments,
    get(section, key) {
      const last = all.filter((a) => a.section === section && a.key === key).at(-1);
      return last && last.value !== '' ? last : undefined;
    },
    list(section, key) {
      const mine = all.filter((a) => a.section === section && a.key === key);
      let reset = -1;
      mine.forEach((a, i) => {
        if (a.value === '') reset = i;
      });
      return mine.slice(reset + 1);
    },
    expand: (value) => value.replace(/%(.)/g, (whole, c: string) => specifiers[c] ?? whole),
  };
}

/** Splits a command line or a list value into words, as systemd does: quotes group, backslash escapes. */
export function splitWords(value: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && i + 1 < value.length) cur += value[++i];
      else cur += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < value.length) cur += value[++i];
    else cur += c;
  }
  if (inWord) words.push(cur);
  return words;
}

/** A command line's program and arguments, without systemd's prefixes (`-`, `@`, `+`, `!`, `:`). */
export function commandWords(value: string): string[] {
  const words = splitWords(value);
  if (words[0]) words[0] = words[0].replace(/^[-@+!:|]+/, '');
  return words;
}

/** A path list entry without its `-` (ignore if missing) and `+` (relative to the root) prefixes. */
export const pathEntry = (word: string) => word.replace(/^[-+]+/, '');

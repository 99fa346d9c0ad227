/**
 * @module spool-file
 * Reads the files the hook client writes: the output of the shell's `export -p`, followed by
 * `#end`. Pure, so it is tested on recorded files. Read exactly, or refused:
 * - dash (Debian's /bin/sh): `export NAME='value'`, an embedded quote as '"'"'.
 * - bash as /bin/sh (POSIX mode): `export NAME="value"` with \" \\ \$ \` escaped, and
 *   `export NAME=$'value'` (ANSI-C quoting: \n, \t, \303 octal bytes, ...) when the value holds
 *   control or, outside a UTF-8 locale, non-ASCII bytes.
 * - bash as bash: the same with `declare -x ` in place of `export `.
 * A variable exported without a value is `export NAME` (`declare -x NAME`). Values may span
 * lines. The text is handled as bytes (a bash octal escape is one byte of a UTF-8 character)
 * and each value is decoded as UTF-8 at the end. Anything a shell would expand or run (an
 * unquoted `$`, a backquote) is refused, never guessed at.
 */
import { SpoolError } from '../../errors.ts';

export interface SpoolEvent {
  /** OpenVPN's environment, without the hook's own FLEXSCRIPT_* variables. */
  readonly env: Record<string, string>;
  readonly args: string[];
  readonly mode: string;
  /** client-crresponse: the client's answer as OpenVPN wrote it (base64), copied by the hook. */
  readonly crResponse?: string;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
/** bash's `declare` with flags that include x (exported), e.g. `declare -x ` or `declare -rx `. */
const DECLARE = /declare -[a-zA-Z]*x[a-zA-Z]* /y;
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, e: 27, E: 27, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };
const HEX = /[0-9A-Fa-f]/;
const NON_ASCII = /[\x80-\xff]/;

/** A code point as UTF-8, one char per byte (the parser works on such byte strings). */
function utf8Bytes(cp: number): string {
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  return Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1');
}

/** A piece of the text read: what it holds and the offset just past it. */
interface Scanned {
  readonly value: string;
  readonly end: number;
}

function fail(what: string, offset: number): never {
  throw new SpoolError(`spool file: ${what} at offset ${offset}`);
}

/** Parses `export -p` output; throws SpoolError if it is cut short or not in a known format. */
export function parseExports(input: string | Buffer): { vars: Map<string, string>; complete: boolean } {
  // one char per byte, so escapes that stand for single bytes combine into UTF-8 characters
  const text = typeof input === 'string' ? Buffer.from(input, 'utf8').toString('latin1') : input.toString('latin1');
  const vars = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n' || c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (text.startsWith('#end', i)) return { vars: decode(vars), complete: true };
    const name = exportedName(text, i);
    i = name.end;
    if (text[i] !== '=') {
      if (i < text.length && text[i] !== '\n' && text[i] !== ' ') fail('unexpected text after a variable name', i);
      vars.set(name.value, '');
      continue;
    }
    const value = word(text, i + 1);
    vars.set(name.value, value.value);
    i = value.end;
  }
  return { vars: decode(vars), complete: false };
}

/** `export NAME` or `declare -x NAME` (start is at the line's first word): the name. */
function exportedName(text: string, start: number): Scanned {
  let i = start;
  if (text.startsWith('export ', i)) {
    i += 7;
  } else {
    DECLARE.lastIndex = i;
    if (!DECLARE.exec(text)) fail('not the export -p output of a known shell (expected "export" or "declare -x")', i);
    i = DECLARE.lastIndex;
  }
  NAME.lastIndex = i;
  const m = NAME.exec(text);
  if (!m) fail('expected a variable name', i);
  return { value: m![0], end: NAME.lastIndex };
}

/** A value: a run of quoted and unquoted pieces, ended by whitespace (start is just past the `=`). */
function word(text: string, start: number): Scanned {
  let i = start;
  let value = '';
  while (i < text.length && text[i] !== '\n' && text[i] !== ' ' && text[i] !== '\t') {
    const q = text[i]!;
    if (q === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) fail('unterminated single quote', i);
      value += text.slice(i + 1, end);
      i = end + 1;
    } else if (q === '$' && text[i + 1] === "'") {
      const piece = ansiC(text, i + 2);
      value += piece.value;
      i = piece.end;
    } else if (q === '"') {
      const piece = doubleQuoted(text, i + 1);
      value += piece.value;
      i = piece.end;
    } else if (q === '\\') {
      if (i + 1 >= text.length) fail('backslash at the end', i);
      if (text[i + 1] !== '\n') value += text[i + 1];
      i += 2;
    } else if ('$`;&|<>()"'.includes(q)) {
      fail(`unquoted ${q}`, i);
    } else {
      value += q;
      i++;
    }
  }
  return { value, end: i };
}

/** A "..." piece (start is just past the opening quote); a backslash escapes only " \ $ ` and newline. */
function doubleQuoted(text: string, start: number): Scanned {
  let i = start;
  let value = '';
  for (;;) {
    const d = text[i];
    if (d === undefined) fail('unterminated double quote', i);
    if (d === '"') return { value, end: i + 1 };
    if (d === '$' || d === '`') fail(`unescaped ${d} in double quotes`, i);
    if (d === '\\' && text[i + 1] !== undefined && '"\\$`\n'.includes(text[i + 1]!)) {
      if (text[i + 1] !== '\n') value += text[i + 1]; // backslash-newline joins lines
      i += 2;
      continue;
    }
    value += d;
    i++;
  }
}

/** bash's $'...' (start is just past the opening quote). */
function ansiC(text: string, start: number): Scanned {
  let i = start;
  let out = '';
  for (;;) {
    const c = text[i];
    if (c === undefined) fail("unterminated $'...' quote", i);
    if (c === "'") {
      i++;
      return { value: out, end: i };
    }
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === undefined) fail("unterminated $'...' quote", i);
    i += 2;
    if (e! in SIMPLE_ESCAPES) {
      out += String.fromCharCode(SIMPLE_ESCAPES[e!]!);
    } else if (e! >= '0' && e! <= '7') {
      let n = Number(e);
      for (let k = 0; k < 2 && text[i]! >= '0' && text[i]! <= '7'; k++) n = n * 8 + Number(text[i++]);
      out += String.fromCharCode(n & 0xff);
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const max = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      let digits = '';
      while (digits.length < max && text[i] !== undefined && HEX.test(text[i]!)) digits += text[i++];
      if (digits === '')
        out += `\\${e}`; // as bash: not an escape without a digit
      else if (e === 'x') out += String.fromCharCode(Number.parseInt(digits, 16));
      else out += utf8Bytes(Number.parseInt(digits, 16));
    } else if (e === 'c') {
      const x = text[i++];
      if (x === undefined) fail("unterminated $'...' quote", i);
      out += String.fromCharCode(x!.charCodeAt(0) & 0x1f);
    } else {
      out += `\\${e}`; // bash keeps an unknown escape as it is
    }
    if (out.includes('\0')) fail('NUL byte in a value', i);
  }
}

/** Byte strings to text: each value is UTF-8 (invalid bytes become U+FFFD, as before). */
function decode(vars: Map<string, string>): Map<string, string> {
  for (const [k, v] of vars) if (NON_ASCII.test(v)) vars.set(k, Buffer.from(v, 'latin1').toString('utf8'));
  return vars;
}

/** Parses a complete spool file into OpenVPN's env and the hook's arguments. */
export function parseSpoolFile(text: string | Buffer): SpoolEvent {
  const { vars, complete } = parseExports(text);
  if (!complete) throw new SpoolError('spool file is incomplete (no #end line)');
  const argc = Number(vars.get('FLEXSCRIPT_ARGC') ?? '0');
  if (!Number.isInteger(argc) || argc < 0 || argc > 64) throw new SpoolError('spool file: bad FLEXSCRIPT_ARGC');
  const args: string[] = [];
  for (let n = 1; n <= Math.min(argc, 7); n++) args.push(vars.get(`FLEXSCRIPT_ARG${n}`) ?? '');
  const env: Record<string, string> = {};
  for (const [k, v] of vars) if (!k.startsWith('FLEXSCRIPT_')) env[k] = v;
  // auth via-file: the hook copied the credentials out of the file OpenVPN deletes
  if (vars.has('FLEXSCRIPT_USERNAME')) {
    env.username = vars.get('FLEXSCRIPT_USERNAME')!;
    env.password = vars.get('FLEXSCRIPT_PASSWORD') ?? '';
  }
  // a password belongs to user-pass-verify alone, whatever else OpenVPN leaves in the env
  if (env.script_type !== 'user-pass-verify') delete env.password;
  const crResponse = env.script_type === 'client-crresponse' ? vars.get('FLEXSCRIPT_CR_RESPONSE') : undefined;
  return { env, args, mode: vars.get('FLEXSCRIPT_MODE') ?? 'wait', ...(crResponse === undefined ? {} : { crResponse }) };
}

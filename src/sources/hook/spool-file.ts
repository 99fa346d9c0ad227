/**
 * @module spool-file
 * Reads the files the hook client writes: the output of dash's `export -p` followed by `#end`.
 * dash writes `export NAME='value'` (an embedded quote as '"'"'), or `export NAME` for a
 * variable without a value; values may span lines. Pure, so it is tested on recorded files.
 */
import { SpoolError } from '../../errors.ts';

export interface SpoolEvent {
  /** OpenVPN's environment, without the hook's own FLEXSCRIPT_* variables. */
  readonly env: Record<string, string>;
  readonly args: string[];
  readonly mode: string;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Parses `export -p` output; throws SpoolError if it is cut short or not in that format. */
export function parseExports(text: string): { vars: Map<string, string>; complete: boolean } {
  const vars = new Map<string, string>();
  let i = 0;
  const fail = (what: string): never => {
    throw new SpoolError(`spool file: ${what} at offset ${i}`);
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '\n' || c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (text.startsWith('#end', i)) return { vars, complete: true };
    if (!text.startsWith('export ', i)) fail('expected "export"');
    i += 7;
    NAME.lastIndex = i;
    const m = NAME.exec(text);
    if (!m) fail('expected a variable name');
    const name = m![0];
    i = NAME.lastIndex;
    if (text[i] !== '=') {
      vars.set(name, '');
      continue;
    }
    i++;
    let value = '';
    // a word: a run of quoted and unquoted pieces, ended by whitespace
    while (i < text.length && text[i] !== '\n' && text[i] !== ' ' && text[i] !== '\t') {
      const q = text[i];
      if (q === "'") {
        const end = text.indexOf("'", i + 1);
        if (end < 0) fail('unterminated single quote');
        value += text.slice(i + 1, end);
        i = end + 1;
      } else if (q === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length && '"\\$`\n'.includes(text[i + 1]!)) i++;
          value += text[i++];
        }
        if (i >= text.length) fail('unterminated double quote');
        i++;
      } else if (q === '\\') {
        value += text[i + 1] ?? '';
        i += 2;
      } else {
        value += q;
        i++;
      }
    }
    vars.set(name, value);
  }
  return { vars, complete: false };
}

/** Parses a complete spool file into OpenVPN's env and the hook's arguments. */
export function parseSpoolFile(text: string): SpoolEvent {
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
  return { env, args, mode: vars.get('FLEXSCRIPT_MODE') ?? 'wait' };
}

/**
 * @module openvpn-management/encoder
 * The one encoder for every line written to OpenVPN's management interface. It keeps to the
 * limits of OpenVPN's own reader (manage.c, options.c parse_line):
 *
 * - a command is read into 1024 bytes, LF included; the rest of a longer line runs as a NEW
 *   command. Every line here stays below MAX_LINE_BYTES.
 * - an argument longer than 255 bytes makes OpenVPN refuse the whole command. Every quoted
 *   argument here is at most MAX_ARG_BYTES, quotes and escapes included.
 * - control bytes (C0 but LF, and DEL) are dropped silently, so `E\x01ND` arrives as `END`.
 *   Text a client controls has them replaced; words and config lines must not contain any.
 * - inside quotes only `\\`, `\"` and `\ ` are valid escapes; anything else is refused.
 *
 * Text a client controls (reasons carrying a username or common name) is never refused: it is
 * cut, on a UTF-8 character boundary and never inside an escape, so every client still gets
 * its answer. Text that must arrive exactly (a pending-auth URL, a config line) is refused
 * when it does not fit, with a CommandError.
 */

export class CommandError extends Error {
  readonly code = ErrorCode.MANAGEMENT_COMMAND;
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** OpenVPN's parameter buffer is 256 bytes: one quoted argument, quotes included, fits in 255. */
export const MAX_ARG_BYTES = 255;
/** OpenVPN's command buffer is 1024 bytes, LF included; stay clear of it. */
export const MAX_LINE_BYTES = 1023;

import { ErrorCode } from '../errors.ts';
import type { ReplyShape } from './codec.ts';

export type { ReplyShape };

const SEAL = Symbol('encoded');

/**
 * A command as it goes on the wire, made only by this module: the management client writes
 * nothing else to OpenVPN.
 */
export class EncodedCommand {
  /** @internal made by `command`/`multiLineCommand`/`passwordLine` only */
  constructor(
    seal: typeof SEAL,
    /** The exact bytes to write, each line ending in LF. */
    readonly text: string,
    readonly shape: ReplyShape,
    /** For logs and errors: the command without client text. */
    readonly name: string,
  ) {
    if (seal !== SEAL) throw new CommandError('management commands are made by the encoder only');
  }
}

/** C0 controls (LF among them), DEL and C1 controls. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u001f\u007f-\u009f]/g;

/** A bare word: a verb, a number, a fixed keyword. Nothing OpenVPN would read differently. */
const WORD = /^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]*$/;

export type Token = { readonly kind: 'word'; readonly value: string } | { readonly kind: 'quoted'; readonly value: string };

/** A fixed keyword or number, written bare. */
export function word(value: string): Token {
  if (!WORD.test(value)) throw new CommandError(`not a plain word: ${JSON.stringify(value.slice(0, 40))}`);
  return { kind: 'word', value };
}

/** A client id, key id or count: a non-negative integer. */
export function id(what: string, n: number): Token {
  if (!Number.isSafeInteger(n) || n < 0) throw new CommandError(`${what} is not a client id: ${n}`);
  return { kind: 'word', value: String(n) };
}

const escapeChar = (c: string) => (c === '\\' || c === '"' ? `\\${c}` : c);

/** A lone surrogate has no UTF-8 form: it becomes U+FFFD, as Buffer would write it. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/**
 * Text a client may control, quoted: control characters become `_` (as OpenVPN itself does in
 * names), and the whole argument is cut to MAX_ARG_BYTES on a character boundary.
 */
export function text(value: string): Token {
  const clean = wellFormed(String(value)).replace(CONTROL_ALL, '_');
  let out = '"';
  let bytes = 2;
  for (const c of clean) {
    const piece = escapeChar(c);
    const n = Buffer.byteLength(piece);
    if (bytes + n > MAX_ARG_BYTES) break;
    out += piece;
    bytes += n;
  }
  return { kind: 'quoted', value: `${out}"` };
}

/** Text that must arrive exactly (a URL, a fixed message): refused when it cannot. */
export function exact(what: string, value: string): Token {
  if (CONTROL.test(value)) throw new CommandError(`${what} contains a control character: ${JSON.stringify(value.slice(0, 40))}`);
  const quoted = `"${wellFormed(value).replace(/[\\"]/g, escapeChar)}"`;
  if (Buffer.byteLength(quoted) > MAX_ARG_BYTES) throw new CommandError(`${what} is longer than OpenVPN takes in one argument (${MAX_ARG_BYTES} bytes quoted)`);
  return { kind: 'quoted', value: quoted };
}

function checkLine(line: string): string {
  // defence in depth: the tokens above cannot produce these
  if (CONTROL.test(line)) throw new CommandError(`command line contains a control character: ${JSON.stringify(line.slice(0, 40))}`);
  if (Buffer.byteLength(line) + 1 > MAX_LINE_BYTES) throw new CommandError(`command line longer than ${MAX_LINE_BYTES - 1} bytes`);
  return line;
}

/** One command line from its tokens; the first is the verb. */
export function command(shape: ReplyShape, verb: string, ...args: Token[]): EncodedCommand {
  const tokens = [word(verb), ...args];
  const line = checkLine(tokens.map((t) => t.value).join(' '));
  const name = tokens
    .filter((t) => t.kind === 'word')
    .slice(0, 3)
    .map((t) => t.value)
    .join(' ');
  return new EncodedCommand(SEAL, `${line}\n`, shape, name);
}

/**
 * A command followed by a block of lines and `END` (client-auth). Each block line must arrive
 * exactly as given: one with a control character, over `maxLineBytes`, or reading END (which
 * would close the block early and make the following lines commands) is refused.
 */
export function multiLineCommand(head: EncodedCommand, lines: readonly string[], maxLineBytes: number): EncodedCommand {
  for (const l of lines) {
    if (typeof l !== 'string') throw new CommandError(`block line must be a string, got ${typeof l}`);
    if (CONTROL.test(l)) throw new CommandError(`block line contains a control character: ${JSON.stringify(l.slice(0, 40))}`);
    if (Buffer.byteLength(l) > maxLineBytes) throw new CommandError(`block line longer than ${maxLineBytes} bytes`);
    if (l.trim() === 'END') throw new CommandError('block line is END');
    checkLine(l);
  }
  return new EncodedCommand(SEAL, `${head.text}${lines.map((l) => `${l}\n`).join('')}END\n`, head.shape, head.name);
}

/** The management password, read by OpenVPN as one whole line. */
export function passwordLine(password: string): EncodedCommand {
  if (CONTROL.test(password)) throw new CommandError('the management password contains a control character');
  checkLine(password);
  return new EncodedCommand(SEAL, `${password}\n`, 'single', 'password');
}

/**
 * @module text-table
 * Text for the terminal: plain aligned columns for the command line (status, sessions, bench),
 * and client-controlled text shown so that it cannot act on the terminal or pass for other text.
 */
import { displayWidth, padToWidth } from './display-width.ts';

/**
 * Characters that must never reach a terminal raw: controls (C0, DEL, C1 such as U+009B, which
 * some terminals take as an escape sequence), format characters (bidi overrides and isolates,
 * marks, zero-width characters), line and paragraph separators, lone surrogates, private use,
 * and blanks other than the plain space (no-break and typographic spaces, Hangul fillers,
 * braille blank) that pass for a space or for nothing.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\u00a0\u115f\u1160\u1680\u2000-\u200a\u202f\u205f\u2800\u3000\u3164\uffa0]/gu;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeCodePoint(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0)!;
  const hex = cp.toString(16);
  if (cp <= 0xff) return `\\x${hex.padStart(2, '0')}`;
  return cp <= 0xffff ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
}

/** Text with every hidden character written as an escape (`\x7f`, `\u202e`, `\u{e0041}`); the rest unchanged. */
export function visibleText(text: string): string {
  return text.replace(HIDDEN, escapeCodePoint);
}

/**
 * A client-controlled name shown safely, no quotes added: a backslash and a double quote are
 * escaped, hidden characters too, and so are spaces at either end, which a table would hide.
 */
export function tableName(name: string): string {
  const escaped = visibleText(name.replace(/[\\"]/g, (c) => `\\${c}`));
  return escaped.replace(/^ +| +$/g, (spaces) => '\\x20'.repeat(spaces.length));
}

/** A client-controlled name in a message, in double quotes: `"alice\x20"`. */
export function quotedName(name: string): string {
  return `"${tableName(name)}"`;
}

/**
 * JSON for the terminal: hidden characters inside strings are written as `\uXXXX` escapes, which
 * parse back to the same text. (JSON.stringify escapes C0 controls in strings itself; the ones
 * left are the layout's own newlines.)
 */
export function terminalJson(value: unknown): string {
  return escapeJson(JSON.stringify(value, null, 2));
}

/** `terminalJson` on one line: for a stream of JSON lines. */
export function terminalJsonLine(value: unknown): string {
  return escapeJson(JSON.stringify(value));
}

function escapeJson(json: string): string {
  return json.replace(HIDDEN, (ch) =>
    ch < ' ' ? ch : Array.from({ length: ch.length }, (_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

/** The widest a table column gets, in terminal columns: a long name is cut with `…` (--json has it whole). */
export const MAX_COLUMN_WIDTH = 40;

/** Text cut to at most `width` terminal columns, ending in `…` when cut. */
function capWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = '';
  for (const ch of text) {
    if (displayWidth(`${out}${ch}`) > width - 1) break;
    out += ch;
  }
  return `${out}…`;
}

/**
 * Columns padded to their widest cell (in terminal columns, each at most MAX_COLUMN_WIDTH), two
 * spaces apart, no trailing blanks.
 */
export function textTable(head: readonly string[], rows: readonly (readonly string[])[], maxWidth = MAX_COLUMN_WIDTH): string {
  const cells = [head, ...rows].map((r) => head.map((_, i) => capWidth(visibleText(r[i] ?? ''), Math.max(maxWidth, displayWidth(head[i]!)))));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => displayWidth(r[i]!))));
  return cells
    .map((r) =>
      r
        .map((c, i) => padToWidth(c, widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The time zone tables are shown in: the system's (TZ), e.g. `Europe/Berlin` or `UTC`. */
export function tableTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
}

const two = (n: number) => String(n).padStart(2, '0');

/** A time for a table, in the local time zone (tableTimeZone, named in the column's head): `2026-11-28 22:05:33`. */
export function tableTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

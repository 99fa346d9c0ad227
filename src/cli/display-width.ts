/**
 * @module display-width
 * How many terminal columns a text takes, so tables line up with names in any script: East
 * Asian wide and fullwidth characters and emoji take two columns, combining marks none, and a
 * grapheme (a character with its marks, a flag, a keycap) counts once.
 */

/** East Asian Wide (W) and Fullwidth (F) ranges, emoji aside (those go by their Emoji_Presentation property). */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], // Hangul Jamo initial consonants
  [0x2329, 0x232a], // angle brackets
  [0x2e80, 0x303e], // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
  [0x3041, 0x3247], // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK strokes, enclosed CJK
  [0x3250, 0x4dbf], // enclosed CJK, CJK compatibility, CJK extension A
  [0x4e00, 0xa4cf], // CJK unified ideographs, Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fff], // ideographic symbols
  [0x17000, 0x18cff], // Tangut, Khitan
  [0x18d00, 0x18d7f], // Tangut supplement
  [0x1aff0, 0x1b2ff], // Kana extended and supplement, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x2fffd], // CJK extensions B to F, compatibility supplement
  [0x30000, 0x3fffd], // CJK extensions G and H
];

/** Takes no column of its own: combining marks, Hangul medial and final Jamo. */
const ZERO = /^[\p{Mn}\p{Me}\u1160-\u11ff\ud7b0-\ud7ff]$/u;
const EMOJI_PRESENTATION = /^\p{Emoji_Presentation}$/u;
const EMOJI = /^\p{Emoji}$/u;
const EMOJI_VARIATION = '\ufe0f';

function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [from, to] = WIDE[mid]!;
    if (cp < from) hi = mid - 1;
    else if (cp > to) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Columns of one code point on its own. */
function codePointWidth(ch: string): 0 | 1 | 2 {
  if (ZERO.test(ch)) return 0;
  if (EMOJI_PRESENTATION.test(ch) || isWide(ch.codePointAt(0)!)) return 2;
  return 1;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Columns `text` takes in a terminal. Meant for printable text: escape controls first. */
export function displayWidth(text: string): number {
  // the common case: printable ASCII is one column a character
  if (/^[\x20-\x7e]*$/.test(text)) return text.length;
  let width = 0;
  for (const { segment } of graphemes.segment(text)) {
    const first = String.fromCodePoint(segment.codePointAt(0)!);
    // a text-style emoji asked to show as emoji (e.g. a heart with U+FE0F) takes two columns
    if (segment.includes(EMOJI_VARIATION) && EMOJI.test(first)) width += 2;
    else width += codePointWidth(first);
  }
  return width;
}

/** `text` padded with spaces to `width` columns. */
export function padToWidth(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

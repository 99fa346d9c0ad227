/**
 * @module glob
 * Shell-style name patterns for matching common names and usernames in plugin options:
 * `*` is any run of characters (line breaks too), `?` one character; everything else is
 * literal. A pattern is operator config, but the names it is matched against are
 * client-controlled data, so matching never backtracks: a pattern is split at its stars into
 * literal pieces, the first anchored at the start, the last at the end, and each piece between
 * taken at its leftmost place (which is always right when only `*` separates pieces). The work
 * is at most the name's length times the pattern's, and names are capped in length.
 */

/**
 * Longest name a pattern is matched against: a common name has at most 64 characters, and a
 * username or common name in plugin options at most 256. A longer name matches no pattern.
 */
export const MAX_GLOB_NAME = 256;

/** Counts character comparisons, so tests can bound the work of a match. */
export interface GlobMeter {
  steps: number;
}

/** A matcher for the whole string; names longer than MAX_GLOB_NAME match nothing. */
export function compileGlob(pattern: string, meter?: GlobMeter): (name: string) => boolean {
  // by code point, as the `u` regular expression this replaces did: `?` is one character
  const pieces = pattern.split('*').map((p) => [...p]);
  const head = pieces[0]!;
  if (pieces.length === 1) {
    return (name) => {
      if (name.length > MAX_GLOB_NAME) return false;
      const chars = [...name];
      return chars.length === head.length && at(chars, head, 0, meter);
    };
  }
  const tail = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((p) => p.length > 0);
  return (name) => {
    if (name.length > MAX_GLOB_NAME) return false;
    const chars = [...name];
    const end = chars.length - tail.length;
    if (end < head.length || !at(chars, head, 0, meter) || !at(chars, tail, end, meter)) return false;
    let from = head.length;
    for (const piece of middle) {
      const found = find(chars, piece, from, end, meter);
      if (found < 0) return false;
      from = found + piece.length;
    }
    return true;
  };
}

/** Does `piece` (with `?` for any character) match `chars` at `start`? */
function at(chars: readonly string[], piece: readonly string[], start: number, meter?: GlobMeter): boolean {
  for (let i = 0; i < piece.length; i++) {
    if (meter) meter.steps++;
    if (piece[i] !== '?' && piece[i] !== chars[start + i]) return false;
  }
  return true;
}

/** The leftmost place at or after `from` where `piece` matches and ends by `limit`, or -1. */
function find(chars: readonly string[], piece: readonly string[], from: number, limit: number, meter?: GlobMeter): number {
  for (let start = from; start + piece.length <= limit; start++) if (at(chars, piece, start, meter)) return start;
  return -1;
}

/**
 * @module glob
 * Shell-style name patterns for matching common names and usernames in plugin options:
 * `*` is any run of characters, `?` one character; everything else is literal (a pattern is
 * operator config, but the names it is matched against are client-controlled data).
 */

/** A matcher for the whole string. */
export function compileGlob(pattern: string): (name: string) => boolean {
  const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  const re = new RegExp(`^${source}$`, 'su');
  return (name) => re.test(name);
}

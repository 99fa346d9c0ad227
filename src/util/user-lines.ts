/**
 * @module user-lines
 * The line format the users file (password-auth) and the TOTP secrets file share: one entry a
 * line, `user:…`, with `#` comments and blank lines, LF or CRLF line ends.
 */

/** Why a username cannot be the first field of such a line, or undefined when it can. */
export function usernameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.includes(':')) return 'contains ":", which separates the fields';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains a control character';
  if (name.startsWith('#')) return 'starts with "#", which marks a comment';
  if (Buffer.byteLength(name) > 256) return 'is longer than 256 bytes';
  return undefined;
}

/** The lines of a file's text that hold an entry, numbered from 1: blank lines and comments skipped, a CR before the LF dropped. */
export function* entryLines(text: string): Generator<{ readonly line: number; readonly content: string }> {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, raw] of lines.entries()) {
    const content = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (content.trim() === '' || content.startsWith('#')) continue;
    yield { line: i + 1, content };
  }
}

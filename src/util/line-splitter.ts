/**
 * @module line-splitter
 * Splits a byte stream into lines with a hard length limit, so a peer that never sends a newline
 * cannot make the reader buffer without bound. Only the line ending (`\n`, or `\r\n`) is taken
 * off: every other byte, spaces included, is part of the line. Lines are decoded as UTF-8 whole,
 * so a character split across chunks stays intact.
 */

export interface SplitResult {
  /** The lines this chunk completed, in order. */
  readonly lines: string[];
  /** The line being read grew past the limit: the splitter takes nothing more. */
  readonly tooLong: boolean;
}

const LF = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  #held: Buffer[] = [];
  #heldBytes = 0;
  #tooLong = false;

  /** `maxBytes`: the longest line accepted, without its line ending. */
  constructor(readonly maxBytes: number) {}

  push(chunk: Buffer): SplitResult {
    const lines: string[] = [];
    if (this.#tooLong) return { lines, tooLong: true };
    let start = 0;
    for (let nl = chunk.indexOf(LF); nl >= 0; nl = chunk.indexOf(LF, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      const whole = this.#heldBytes === 0 ? piece : Buffer.concat([...this.#held, piece]);
      this.#held = [];
      this.#heldBytes = 0;
      const line = whole.at(-1) === CR ? whole.subarray(0, -1) : whole;
      if (line.length > this.maxBytes) return this.#fail(lines);
      lines.push(line.toString('utf8'));
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0) {
      // one byte of slack: a `\r` may end the line once its `\n` comes
      if (this.#heldBytes + rest.length > this.maxBytes + 1) return this.#fail(lines);
      // a copy: the caller's chunk may be a view into a larger buffer it reuses
      this.#held.push(Buffer.from(rest));
      this.#heldBytes += rest.length;
    }
    return { lines, tooLong: false };
  }

  /** At the end of input: the last line if it had no line ending (a trailing `\r` is taken off too). */
  finish(): string | undefined {
    if (this.#tooLong || this.#heldBytes === 0) return undefined;
    const whole = Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    const line = whole.at(-1) === CR ? whole.subarray(0, -1) : whole;
    return line.length > this.maxBytes ? undefined : line.toString('utf8');
  }

  #fail(lines: string[]): SplitResult {
    this.#tooLong = true;
    this.#held = [];
    this.#heldBytes = 0;
    return { lines, tooLong: true };
  }
}

/**
 * @module line-splitter
 * Splits a byte stream into lines with a hard length limit, so a peer that never sends a newline
 * cannot make the reader buffer without bound. Only the line ending (`\n`, or `\r\n`) is taken
 * off: every other byte, spaces included, is part of the line. Lines are decoded as UTF-8 whole,
 * so a character split across chunks stays intact.
 *
 * A line over the limit is reported as soon as it is known to be too long, not at a newline that
 * may never come. Then, by `afterTooLong`, the splitter either takes nothing more (`stop`: the
 * caller closes the connection) or drops the rest of that line and goes on with the next
 * (`skip`: for a peer that must keep being served, such as the root stage's pipe).
 *
 * It lives in src/root because the root stage, which reads its requests with it, may import only
 * src/root; the rest of the product imports it through src/util/line-splitter.ts. It imports
 * nothing.
 */

export interface SplitResult {
  /** The lines this chunk completed, in order. */
  readonly lines: string[];
  /** A line grew past the limit (with `stop`: the splitter takes nothing more). */
  readonly tooLong: boolean;
}

export interface LineHandlers {
  line(text: string): void;
  /** Called once for each line over the limit, in order with the lines. */
  tooLong?(): void;
}

export interface LineSplitterOptions {
  /** What follows a line over the limit: nothing (`stop`, the default), or the next line (`skip`). */
  readonly afterTooLong?: 'stop' | 'skip';
}

const LF = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  readonly #skipMode: boolean;
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** stop: nothing more is taken; skip: the rest of the current line is dropped. */
  #tooLong = false;

  /** `maxBytes`: the longest line accepted, without its line ending (`Infinity` for no limit). */
  constructor(
    readonly maxBytes: number,
    options: LineSplitterOptions = {},
  ) {
    this.#skipMode = options.afterTooLong === 'skip';
  }

  push(chunk: Buffer): SplitResult {
    const lines: string[] = [];
    let tooLong = false;
    this.split(chunk, {
      line: (text) => lines.push(text),
      tooLong: () => {
        tooLong = true;
      },
    });
    return { lines, tooLong: tooLong || (this.#tooLong && !this.#skipMode) };
  }

  /** Like push, with a call for each line and each line over the limit, in the order they come. */
  split(chunk: Buffer, on: LineHandlers): void {
    if (this.#tooLong && !this.#skipMode) return;
    let start = 0;
    for (let nl = chunk.indexOf(LF); nl >= 0; nl = chunk.indexOf(LF, start)) {
      const from = start;
      start = nl + 1;
      if (this.#tooLong) {
        // skip mode: this newline ends the line already reported
        this.#tooLong = false;
        continue;
      }
      // a line wholly inside this chunk is decoded where it lies, with no view or copy of its
      // bytes: a storm of management ENV lines runs through here
      let text: string | undefined;
      if (this.#heldBytes === 0) {
        const end = nl > from && chunk[nl - 1] === CR ? nl - 1 : nl;
        if (end - from <= this.maxBytes) text = chunk.toString('utf8', from, end);
      } else {
        const whole = Buffer.concat([...this.#held, chunk.subarray(from, nl)]);
        this.#drop();
        const line = whole.at(-1) === CR ? whole.subarray(0, -1) : whole;
        if (line.length <= this.maxBytes) text = line.toString('utf8');
      }
      if (text === undefined) {
        on.tooLong?.();
        if (!this.#skipMode) {
          this.#stop();
          return;
        }
        continue;
      }
      on.line(text);
    }
    const rest = chunk.subarray(start);
    if (rest.length === 0 || this.#tooLong) return;
    // one byte of slack: a `\r` may end the line once its `\n` comes
    if (this.#heldBytes + rest.length > this.maxBytes + 1) {
      on.tooLong?.();
      this.#drop();
      this.#tooLong = true;
      return;
    }
    // a copy: the caller's chunk may be a view into a larger buffer it reuses
    this.#held.push(Buffer.from(rest));
    this.#heldBytes += rest.length;
  }

  /** At the end of input: the last line if it had no line ending (a trailing `\r` is taken off too). */
  finish(): string | undefined {
    if (this.#tooLong || this.#heldBytes === 0) return undefined;
    const whole = Buffer.concat(this.#held);
    this.#drop();
    const line = whole.at(-1) === CR ? whole.subarray(0, -1) : whole;
    return line.length > this.maxBytes ? undefined : line.toString('utf8');
  }

  /**
   * The line read so far, with no line ending yet, starts with `prefix`: takes the prefix off and
   * says so. For a peer's prompt that ends no line (OpenVPN's `ENTER PASSWORD:`).
   */
  takePrefix(prefix: Buffer): boolean {
    if (this.#tooLong || this.#heldBytes < prefix.length) return false;
    const held = Buffer.concat(this.#held);
    if (!held.subarray(0, prefix.length).equals(prefix)) return false;
    const rest = held.subarray(prefix.length);
    this.#held = rest.length > 0 ? [rest] : [];
    this.#heldBytes = rest.length;
    return true;
  }

  #drop(): void {
    this.#held = [];
    this.#heldBytes = 0;
  }

  #stop(): void {
    this.#tooLong = true;
    this.#drop();
  }
}

/**
 * @module line-reader
 * Splits a byte stream into newline-terminated lines with a hard length limit, so a peer that
 * never sends a newline cannot make either side buffer without bound. An oversized line is
 * dropped up to its newline and reported once.
 */
import type { Readable } from 'node:stream';

export interface LineHandlers {
  line(text: string): void;
  /** A line longer than the limit was dropped. */
  tooLong?(): void;
  end?(): void;
}

export function readLines(stream: Readable, maxBytes: number, handlers: LineHandlers): void {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (skipping || size + piece.length > maxBytes) {
        if (!skipping) handlers.tooLong?.();
        skipping = false;
        parts = [];
        size = 0;
        continue;
      }
      parts.push(piece);
      const text = Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      handlers.line(text.endsWith('\r') ? text.slice(0, -1) : text);
    }
    const rest = chunk.subarray(start);
    if (skipping || rest.length === 0) return;
    if (size + rest.length > maxBytes) {
      // report now, not at the newline that may never come
      handlers.tooLong?.();
      skipping = true;
      parts = [];
      size = 0;
      return;
    }
    parts.push(rest);
    size += rest.length;
  });
  stream.on('end', () => handlers.end?.());
}

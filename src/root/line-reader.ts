/**
 * @module line-reader
 * Reads a byte stream as newline-terminated lines with a hard length limit, so a peer that never
 * sends a newline cannot make either side of the root pipe buffer without bound. An oversized
 * line is reported once and dropped up to its newline; the lines after it are read as usual. A
 * last line without its newline is dropped.
 */
import type { Readable } from 'node:stream';
import { LineSplitter } from './line-splitter.ts';

export interface LineHandlers {
  line(text: string): void;
  /** A line longer than the limit was dropped. */
  tooLong?(): void;
  end?(): void;
}

export function readLines(stream: Readable, maxBytes: number, handlers: LineHandlers): void {
  const splitter = new LineSplitter(maxBytes, { afterTooLong: 'skip' });
  stream.on('data', (chunk: Buffer) => splitter.split(chunk, handlers));
  stream.on('end', () => handlers.end?.());
}

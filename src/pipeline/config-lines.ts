/**
 * @module config-lines
 * Checks the config lines plugins send to OpenVPN. A line is written into a client config file
 * (hook mode) or a `client-auth` block (management mode): a newline inside a value would smuggle
 * in a second directive, so anything that could split or truncate a line is refused.
 */
import { ConfigLineError } from '../errors.ts';

/** OpenVPN reads option lines into a 256-byte buffer (OPTION_LINE_SIZE). */
export const MAX_CONFIG_LINE_BYTES = 255;

export function checkConfigLine(line: unknown): string {
  if (typeof line !== 'string') throw new ConfigLineError(`config line must be a string, got ${typeof line}`);
  if (/[\r\n\0]/.test(line)) throw new ConfigLineError(`config line contains a line break or NUL: ${JSON.stringify(line)}`);
  if (line.trim() === '') throw new ConfigLineError('config line is empty');
  if (Buffer.byteLength(line) > MAX_CONFIG_LINE_BYTES) {
    throw new ConfigLineError(`config line longer than ${MAX_CONFIG_LINE_BYTES} bytes: ${JSON.stringify(line.slice(0, 40))}...`);
  }
  return line;
}

/** `route 10.0.0.0 255.0.0.0` becomes `push "route 10.0.0.0 255.0.0.0"`, quoted as OpenVPN parses it. */
export function pushLine(option: string): string {
  if (typeof option !== 'string') throw new ConfigLineError(`push option must be a string, got ${typeof option}`);
  return checkConfigLine(`push "${option.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
}

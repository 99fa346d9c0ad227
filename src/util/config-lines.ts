/**
 * @module config-lines
 * Checks the config lines plugins send to OpenVPN. A line is written into a client config file
 * (hook mode) or a `client-auth` block (management mode). OpenVPN silently drops control bytes
 * on the management interface, so `E\u0001ND` would arrive as `END`, close the block, and make
 * the next line a management command; a newline in a file would start a second directive. So
 * every control character is refused: C0 (tab, CR, LF, NUL and the rest), DEL, and C1
 * (U+0080–U+009F). OpenVPN keeps C1 characters, but no directive needs one, and some terminals
 * and log viewers act on them (U+009B starts an escape sequence): refusing costs nothing.
 */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { ConfigLineError } from '../errors.ts';

/** OpenVPN reads option lines into a 256-byte buffer (OPTION_LINE_SIZE). */
const MAX_CONFIG_LINE_BYTES = 255;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** `U+0001` for the first control character in a line, for the error. */
function firstControl(line: string): string | undefined {
  const c = CONTROL.exec(line)?.[0];
  return c === undefined ? undefined : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function checkConfigLine(line: unknown): string {
  if (typeof line !== 'string') throw new ConfigLineError(`config line must be a string, got ${typeof line}`);
  const control = firstControl(line);
  if (control) {
    throw new ConfigLineError(
      `config line contains a control character (${control}); a line break or NUL splits a line, and OpenVPN drops the others: ${JSON.stringify(line.slice(0, 80))}`,
    );
  }
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

/**
 * The address a config line gives the client: `ifconfig-push ADDR ...` or
 * `ifconfig-ipv6-push ADDR/BITS ...` (IPv6 canonical, as OpenVPN writes it in learn-address and
 * >CLIENT:ADDRESS); undefined for any other line or a value that is no address of that family.
 */
/** The VPN addresses a line gives (the client model's `vpnAddress` and `vpnAddress6`). */
export interface LineAddresses {
  readonly vpnAddress?: string;
  readonly vpnAddress6?: string;
}

export function lineAddress(line: string): LineAddresses | undefined {
  if (!line.includes('ifconfig')) return undefined;
  const [directive, value = ''] = line.trim().split(/\s+/);
  if (directive === 'ifconfig-push' && isIPv4(value)) return { vpnAddress: value };
  if (directive === 'ifconfig-ipv6-push') {
    const address = value.replace(/\/\d+$/, '');
    if (isIPv6(address)) return { vpnAddress6: new SocketAddress({ address, family: 'ipv6' }).address };
  }
  return undefined;
}

/**
 * @module openvpn-management/commands
 * The exact text of management commands, and the parser of `status 3`. Pure. An argument or
 * config line that could end the command early (CR, LF, NUL) is refused, so text a client
 * controls (a username in a deny reason) can never become a second command.
 */

export class CommandError extends Error {
  readonly code = 'FXS_MANAGEMENT_COMMAND';
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

function checkText(what: string, s: string): string {
  if (/[\r\n\0]/.test(s)) throw new CommandError(`${what} contains a line break or NUL`);
  return s;
}

function checkId(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new CommandError(`${what} is not a client id: ${n}`);
  return n;
}

/** Quotes one argument the way OpenVPN's command parser reads it back. */
export function quoteArg(s: string): string {
  return `"${checkText('argument', s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Accepts a client, with config lines for it (`client-auth-nt` when there are none). */
export function clientAuth(cid: number, kid: number, configLines: readonly string[]): string {
  checkId('cid', cid);
  checkId('kid', kid);
  if (configLines.length === 0) return `client-auth-nt ${cid} ${kid}\n`;
  for (const l of configLines) {
    checkText('config line', l);
    // a line reading END would end the block early
    if (l.trim() === 'END') throw new CommandError('config line is END');
  }
  return `client-auth ${cid} ${kid}\n${configLines.join('\n')}\nEND\n`;
}

/** Refuses a client: `reason` goes to OpenVPN's log, `clientReason` to the client. */
export function clientDeny(cid: number, kid: number, reason: string, clientReason?: string): string {
  const tail = clientReason === undefined ? '' : ` ${quoteArg(clientReason)}`;
  return `client-deny ${checkId('cid', cid)} ${checkId('kid', kid)} ${quoteArg(reason)}${tail}\n`;
}

/** Keeps a client waiting (e.g. for a second factor) for up to `timeoutSec`. */
export function clientPendingAuth(cid: number, kid: number, extra: string, timeoutSec: number): string {
  if (!Number.isInteger(timeoutSec) || timeoutSec <= 0) throw new CommandError(`bad timeout ${timeoutSec}`);
  return `client-pending-auth ${checkId('cid', cid)} ${checkId('kid', kid)} ${quoteArg(extra)} ${timeoutSec}\n`;
}

export function clientKill(cid: number, message?: string): string {
  return `client-kill ${checkId('cid', cid)}${message === undefined ? '' : ` ${quoteArg(message)}`}\n`;
}

/** Commands with no arguments a caller controls, and their reply shapes. */
export const SIMPLE_COMMANDS = {
  'status 3': 'multi',
  'status 2': 'multi',
  status: 'multi',
  version: 'multi',
  pid: 'single',
  'load-stats': 'single',
  'hold release': 'single',
  'state on': 'single',
  'log on': 'single',
  'bytecount 0': 'single',
} as const;
export type SimpleCommand = keyof typeof SIMPLE_COMMANDS;

/** One connected client from `status 3`. */
export interface StatusClient {
  readonly commonName: string;
  readonly realAddress: string;
  readonly virtualAddress: string;
  readonly virtualIPv6Address: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Unix seconds. */
  readonly connectedSince: number;
  readonly username?: string;
  readonly clientId: number;
  readonly peerId?: number;
  readonly cipher?: string;
}

export interface Status {
  readonly clients: StatusClient[];
  readonly routes: { virtualAddress: string; commonName: string; realAddress: string; lastRef: number }[];
  readonly time?: number;
}

/**
 * Parses `status 3` (tab-separated; `HEADER` lines name the columns, so columns are found by
 * name and a new OpenVPN column does not shift the others).
 */
export function parseStatus3(lines: readonly string[]): Status {
  const headers = new Map<string, string[]>();
  const clients: StatusClient[] = [];
  const routes: Status['routes'] = [];
  let time: number | undefined;
  for (const line of lines) {
    const cells = line.split('\t');
    const kind = cells[0];
    if (kind === 'HEADER') {
      headers.set(cells[1] ?? '', cells.slice(2));
      continue;
    }
    if (kind === 'TIME') time = Number(cells[2]);
    const cols = headers.get(kind ?? '');
    if (!cols) continue;
    const get = (name: string) => cells[cols.indexOf(name) + 1] ?? '';
    if (kind === 'CLIENT_LIST') {
      const username = get('Username');
      clients.push({
        commonName: get('Common Name'),
        realAddress: get('Real Address'),
        virtualAddress: get('Virtual Address'),
        virtualIPv6Address: get('Virtual IPv6 Address'),
        bytesReceived: Number(get('Bytes Received')) || 0,
        bytesSent: Number(get('Bytes Sent')) || 0,
        connectedSince: Number(get('Connected Since (time_t)')) || 0,
        username: username && username !== 'UNDEF' ? username : undefined,
        clientId: Number(get('Client ID')),
        peerId: get('Peer ID') === '' ? undefined : Number(get('Peer ID')),
        cipher: get('Data Channel Cipher') || undefined,
      });
    } else if (kind === 'ROUTING_TABLE') {
      routes.push({
        virtualAddress: get('Virtual Address'),
        commonName: get('Common Name'),
        realAddress: get('Real Address'),
        lastRef: Number(get('Last Ref (time_t)')) || 0,
      });
    }
  }
  return { clients, routes, time };
}

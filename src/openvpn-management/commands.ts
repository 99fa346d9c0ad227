/**
 * @module openvpn-management/commands
 * Every management command the daemon sends, built through the encoder (encoder.ts), and the
 * parser of `status 3`. Pure. Text a client controls (a username or common name in a deny
 * reason) is quoted and cut to OpenVPN's limits, so it can never become a second command.
 */
import { command, CommandError, exact, id, multiLineCommand, passwordLine, text, word, type EncodedCommand } from './encoder.ts';

export type { EncodedCommand } from './encoder.ts';

/** A config line in a client-auth block: what OpenVPN reads from a client config file (OPTION_LINE_SIZE). */
const MAX_CONFIG_LINE_BYTES = 255;

/** Accepts a client, with config lines for it (`client-auth-nt` when there are none). */
export function clientAuth(cid: number, kid: number, configLines: readonly string[]): EncodedCommand {
  if (configLines.length === 0) return command('single', 'client-auth-nt', id('cid', cid), id('kid', kid));
  return multiLineCommand(command('single', 'client-auth', id('cid', cid), id('kid', kid)), configLines, MAX_CONFIG_LINE_BYTES);
}

/** Refuses a client: `reason` goes to OpenVPN's log, `clientReason` to the client; both are cut to fit. */
export function clientDeny(cid: number, kid: number, reason: string, clientReason?: string): EncodedCommand {
  const tail = clientReason === undefined ? [] : [text(clientReason)];
  return command('single', 'client-deny', id('cid', cid), id('kid', kid), text(reason), ...tail);
}

/** Keeps a client waiting (e.g. for a second factor) for up to `timeoutSec`; `extra` must arrive whole. */
export function clientPendingAuth(cid: number, kid: number, extra: string, timeoutSec: number): EncodedCommand {
  if (!Number.isInteger(timeoutSec) || timeoutSec <= 0) throw new CommandError(`bad timeout ${timeoutSec}`);
  return command('single', 'client-pending-auth', id('cid', cid), id('kid', kid), exact('pending-auth extra', extra), id('timeout', timeoutSec));
}

/** Disconnects a client; the message (e.g. `HALT,...`) is cut to fit. */
export function clientKill(cid: number, message?: string): EncodedCommand {
  return command('single', 'client-kill', id('cid', cid), ...(message === undefined ? [] : [text(message)]));
}

/** Commands with no argument a caller controls. */
const SIMPLE_COMMANDS = {
  'status 3': () => command('multi', 'status', word('3')),
  'status 2': () => command('multi', 'status', word('2')),
  version: () => command('multi', 'version'),
  pid: () => command('single', 'pid'),
  'load-stats': () => command('single', 'load-stats'),
  'hold release': () => command('single', 'hold', word('release')),
} as const satisfies Record<string, () => EncodedCommand>;
export type SimpleCommand = keyof typeof SIMPLE_COMMANDS;

export function simpleCommand(name: SimpleCommand): EncodedCommand {
  return SIMPLE_COMMANDS[name]();
}

/** The management password, answering OpenVPN's prompt. */
export function password(value: string): EncodedCommand {
  return passwordLine(value);
}

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

/**
 * @module control
 * `flexscript status` and `flexscript kill`: talk to the running daemon. `status` uses the
 * daemon's control socket when the config has `control:` (both modes), else the management
 * pass-through socket; `kill` needs the pass-through (management mode).
 */
import { quotedName, tableName, tableTime, tableTimeZone, terminalJson, textTable } from './text-table.ts';
import { createConnection } from 'node:net';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { parseStatus3, type StatusClient } from '../openvpn-management/commands.ts';
import type { ControlResponse, ControlSession } from '../daemon/control-socket.ts';
import { listedClient } from '../core/listed-client.ts';
import { EXIT, UnreachableError, WHY_UNREACHABLE } from './exit-codes.ts';

/**
 * Writes one request line to a unix socket and reads until `complete` makes sense of what came
 * back: a value when the answer is whole, undefined while it is not; it may throw.
 */
function request<T>(socketPath: string, line: string, complete: (text: string) => T | undefined, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UnreachableError(`no answer from ${socketPath} within ${timeoutMs} ms; ${WHY_UNREACHABLE}`));
    }, timeoutMs);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      socket.end();
      settle();
    };
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new UnreachableError(`cannot reach the daemon at ${socketPath}: ${err.message}; ${WHY_UNREACHABLE}`));
    });
    socket.on('data', (d) => {
      text += d;
      try {
        const answer = complete(text);
        if (answer !== undefined) finish(() => resolve(answer));
      } catch (err) {
        finish(() => reject(err));
      }
    });
  });
}

/** Sends one command and reads its whole answer (one SUCCESS/ERROR line, or lines up to END). */
export function ask(socketPath: string, command: string, timeoutMs = 10_000): Promise<string[]> {
  return request(
    socketPath,
    command,
    (text) => {
      const lines = text.split('\n');
      const done = text.endsWith('\n') && (/^(SUCCESS|ERROR):/.test(lines[0] ?? '') || lines.includes('END'));
      return done ? lines.slice(0, -1) : undefined;
    },
    timeoutMs,
  );
}

/** Sends one request to the daemon's control socket and reads its one-line JSON answer. */
export function askControl<T = ControlResponse>(socketPath: string, message: object, timeoutMs = 10_000): Promise<T> {
  return request(
    socketPath,
    JSON.stringify(message),
    (text) => {
      const end = text.indexOf('\n');
      if (end < 0) return undefined;
      try {
        return JSON.parse(text.slice(0, end)) as T;
      } catch {
        throw new Error(`${socketPath} answered something that is not JSON; is it the daemon's control socket?`);
      }
    },
    timeoutMs,
  );
}

interface Target {
  readonly socket: string;
  readonly instances: string[];
}

async function target(configFile: string): Promise<Target> {
  const { config } = await loadConfig(configFile);
  const socket = config.management?.['pass-through']?.socket;
  if (!socket) throw new Error(`${configFile}: management.pass-through.socket is not set; kill needs it (status also works with control.socket)`);
  return { socket, instances: config.management!.instances.map((i) => i.name) };
}

async function guarded(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err)}\n`);
    return err instanceof ConfigError ? EXIT.config : err instanceof UnreachableError ? EXIT.unreachable : EXIT.failure;
  }
}

/** A pass-through `status 3` row in the shape the control socket answers, so both read alike. */
function fromStatus(instance: string, row: StatusClient): ControlSession {
  const c = listedClient(instance, row, 'management');
  return {
    instance,
    commonName: c.commonName,
    username: c.username,
    vpnAddress: c.vpnAddress,
    vpnAddress6: c.vpnAddress6,
    realAddress: c.realAddress,
    realPort: c.realPort,
    since: new Date(c.connectedAt).toISOString(),
    bytesReceived: c.bytesReceived,
    bytesSent: c.bytesSent,
  };
}

export function statusTable(rows: readonly ControlSession[]): string {
  const head = ['INSTANCE', 'NAME', 'USER', 'VPN ADDRESS', 'REAL ADDRESS', `SINCE (${tableTimeZone()})`, 'BYTES IN', 'BYTES OUT'];
  return textTable(
    head,
    rows.map((s) => [
      s.instance,
      tableName(s.commonName),
      s.username === undefined ? '-' : tableName(s.username),
      [s.vpnAddress, s.vpnAddress6].filter(Boolean).join(' ') || '-',
      s.realAddress === undefined ? '-' : `${s.realAddress}${s.realPort === undefined ? '' : `:${s.realPort}`}`,
      tableTime(Date.parse(s.since)),
      s.bytesReceived === undefined ? '-' : String(s.bytesReceived),
      s.bytesSent === undefined ? '-' : String(s.bytesSent),
    ]),
  );
}

/** Live clients: from the daemon's control socket when configured, else through the pass-through. */
async function liveClients(configFile: string): Promise<readonly ControlSession[]> {
  const { config } = await loadConfig(configFile);
  if (config.control) {
    const answer = await askControl(config.control.socket, { command: 'status' });
    if (!answer.ok) throw new Error(`the daemon refused status: ${answer.error}`);
    if (answer.root && !answer.root.tableReady) {
      const why = (answer.root.problem ?? 'it has not confirmed the table yet').replace(/[\x00-\x1f\x7f]/g, '?');
      process.stderr.write(
        `warning: the root stage is ${answer.root.state} and has not put the firewall's nft table in place; new clients are denied: ${why}\n`,
      );
    }
    return answer.sessions;
  }
  const t = await target(configFile);
  const rows: ControlSession[] = [];
  for (const instance of t.instances) {
    const lines = await ask(t.socket, `@${instance} status 3`);
    if (lines[0]?.startsWith('ERROR:')) throw new Error(`${instance}: ${lines[0]}`);
    for (const c of parseStatus3(lines).clients) if (c.virtualAddress || c.virtualIPv6Address) rows.push(fromStatus(instance, c));
  }
  return rows;
}

export function statusCommand(configFile: string, json: boolean): Promise<number> {
  return guarded(async () => {
    const rows = await liveClients(configFile);
    process.stdout.write(`${json ? terminalJson(rows) : statusTable(rows)}\n`);
    return 0;
  });
}

/**
 * Client ids of the clients in a `status 3` reply whose common name is exactly `name`: byte for
 * byte, spaces and all, so `alice ` never matches `alice`.
 */
export function clientIdsNamed(statusLines: readonly string[], name: string): number[] {
  return parseStatus3(statusLines)
    .clients.filter((c) => c.commonName === name && Number.isInteger(c.clientId))
    .map((c) => c.clientId);
}

/**
 * Disconnects every live client whose common name is exactly `name`. The name never travels on
 * a request line: the matching happens here, on OpenVPN's own list, and each match is killed by
 * its client id.
 */
export function killCommand(configFile: string, name: string, instance?: string): Promise<number> {
  return guarded(async () => {
    const t = await target(configFile);
    let killed = 0;
    for (const i of instance ? [instance] : t.instances) {
      const lines = await ask(t.socket, `@${i} status 3`);
      if (lines[0]?.startsWith('ERROR:')) throw new Error(`${i}: ${lines[0]}`);
      for (const cid of clientIdsNamed(lines, name)) {
        const [answer = ''] = await ask(t.socket, `@${i} client-kill ${cid}`);
        if (!answer.startsWith('SUCCESS:')) throw new Error(`${i}: client ${cid}: ${answer}`);
        killed++;
      }
    }
    if (killed === 0) throw new Error(`no live client named ${quotedName(name)}`);
    process.stdout.write(`disconnected ${killed} session(s) of ${quotedName(name)}\n`);
    return 0;
  });
}

/**
 * @module control
 * `flexscript status` and `flexscript kill`: talk to the running daemon. `status` uses the
 * daemon's control socket when the config has `control:` (both modes), else the management
 * pass-through socket; `kill` needs the pass-through (management mode).
 */
import { tableName, tableTime, textTable } from './text-table.ts';
import { createConnection } from 'node:net';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { parseStatus3, type StatusClient } from '../openvpn-management/commands.ts';
import type { ControlResponse, ControlSession } from '../daemon/control-socket.ts';

/** Sends one command and reads its whole answer (one SUCCESS/ERROR line, or lines up to END). */
export function ask(socketPath: string, command: string, timeoutMs = 10_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the daemon at ${socketPath}: ${err.message}`));
    });
    socket.on('data', (d) => {
      text += d;
      const lines = text.split('\n');
      const first = lines[0] ?? '';
      const done = text.endsWith('\n') && (/^(SUCCESS|ERROR):/.test(first) || lines.includes('END'));
      if (done) {
        clearTimeout(timer);
        socket.end();
        resolve(lines.filter((l, i) => !(l === '' && i === lines.length - 1)));
      }
    });
  });
}

/** Sends one request to the daemon's control socket and reads its one-line JSON answer. */
export function askControl(socketPath: string, request: object, timeoutMs = 10_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the daemon at ${socketPath}: ${err.message}`));
    });
    socket.on('data', (d) => {
      text += d;
      const end = text.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(text.slice(0, end)) as ControlResponse);
      } catch {
        reject(new Error(`${socketPath} answered something that is not JSON; is it the daemon's control socket?`));
      }
    });
  });
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
    return 1;
  }
}

export interface LiveClient extends StatusClient {
  readonly instance: string;
}

function table(rows: LiveClient[]): string {
  const head = ['INSTANCE', 'NAME', 'USER', 'VPN ADDRESS', 'REAL ADDRESS', 'SINCE', 'BYTES IN', 'BYTES OUT'];
  return textTable(
    head,
    rows.map((c) => [
      c.instance,
      tableName(c.commonName),
      c.username ?? '-',
      [c.virtualAddress, c.virtualIPv6Address].filter(Boolean).join(' ') || '-',
      c.realAddress,
      tableTime(c.connectedSince * 1000),
      String(c.bytesReceived),
      String(c.bytesSent),
    ]),
  );
}

function controlTable(rows: readonly ControlSession[]): string {
  const head = ['INSTANCE', 'NAME', 'USER', 'VPN ADDRESS', 'REAL ADDRESS', 'SINCE', 'BYTES IN', 'BYTES OUT'];
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

export function statusCommand(configFile: string, json: boolean): Promise<number> {
  return guarded(async () => {
    const { config } = await loadConfig(configFile);
    if (config.control) {
      const answer = await askControl(config.control.socket, { command: 'status' });
      if (!answer.ok) throw new Error(`the daemon refused status: ${answer.error}`);
      process.stdout.write(json ? `${JSON.stringify(answer.sessions, null, 2)}\n` : `${controlTable(answer.sessions)}\n`);
      return 0;
    }
    const t = await target(configFile);
    const rows: LiveClient[] = [];
    for (const instance of t.instances) {
      const lines = await ask(t.socket, `@${instance} status 3`);
      if (lines[0]?.startsWith('ERROR:')) throw new Error(`${instance}: ${lines[0]}`);
      for (const c of parseStatus3(lines).clients) if (c.virtualAddress || c.virtualIPv6Address) rows.push({ instance, ...c });
    }
    process.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : `${table(rows)}\n`);
    return 0;
  });
}

export function killCommand(configFile: string, name: string, instance?: string): Promise<number> {
  return guarded(async () => {
    const t = await target(configFile);
    let killed = 0;
    for (const i of instance ? [instance] : t.instances) {
      const [answer = ''] = await ask(t.socket, `@${i} kill ${name}`);
      if (answer.startsWith('SUCCESS:')) killed += Number(/killed (\d+)/.exec(answer)?.[1] ?? 0);
      else if (!answer.includes('no live client')) throw new Error(`${i}: ${answer}`);
    }
    if (killed === 0) throw new Error(`no live client named ${JSON.stringify(name)}`);
    process.stdout.write(`disconnected ${killed} session(s) of ${JSON.stringify(name)}\n`);
    return 0;
  });
}

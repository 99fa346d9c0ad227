/**
 * One end-to-end setup for both event sources: a real OpenVPN 2.6 server running as nobody,
 * the real daemon (also nobody) with the recorder plugin, reached through hook mode or
 * management mode. Scenarios written against it run unchanged in both modes.
 */
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load-config.ts';
import type { EventName } from '../../src/events/event-map.ts';
import { HOOK, ownedDir, readJsonLines, startDaemon, writeConfig, type DaemonEvent, type DaemonHandle } from '../../src/lab/daemon-process.ts';
import { createLab, type Lab } from '../../src/lab/lab.ts';
import type { OpenVpnServer } from '../../src/lab/openvpn-process.ts';
import { asksChallenges, hookModeLines, sendsPendingNotices } from '../../src/sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../../src/sources/management/openvpn-lines.ts';
import { RECORDER } from '../support/paths.ts';

export type Mode = 'hook' | 'management';
export const MODES: readonly Mode[] = ['hook', 'management'];

/**
 * What an event source can do with OpenVPN. A scenario names what it needs, never the mode: it
 * is skipped or takes the other branch where a capability is missing.
 */
export interface ModeCaps {
  /** The daemon can disconnect a live client (client-kill over the management interface). */
  readonly killClient: boolean;
  /** A plugin can announce a pending authentication (client-pending-auth) and decide after its time limit. */
  readonly pendingAuth: boolean;
  /** tls-verify reaches plugins and its deny refuses the certificate (management has no tls-verify). */
  readonly tlsVerify: boolean;
  /** OpenVPN is handed a deny's reason: it logs it and tells the client (client-deny with a client reason). */
  readonly denyReason: boolean;
  /** OpenVPN runs client-disconnect for a client whose deferred connect was denied; the daemon keeps it from plugins. */
  readonly disconnectAfterDeny: boolean;
  /**
   * With the daemon gone a connecting client is refused at once (the hook fails closed); without
   * it the client waits and OpenVPN gives up on it after its hand-window (management-client-auth).
   */
  readonly refusedAtOnceWhileDaemonDown: boolean;
  /** A pass-through socket to OpenVPN's management interface (flexscript kill, status from OpenVPN). */
  readonly passThrough: boolean;
  /** The daemon holds a connection to OpenVPN's management interface (and reports it in metrics). */
  readonly managementInterface: boolean;
  /**
   * Events pass through a spool folder: what OpenVPN hands over while the daemon is down waits
   * there (a disconnect then is applied at the restart, not missed).
   */
  readonly spool: boolean;
  /** OpenVPN's down reaches plugins (the hook runs after the privilege drop). */
  readonly downEvent: boolean;
  /** The source can report addresses at the accepted connect instead of running a learn-address hook (`learn-address: connect`). */
  readonly learnAtConnect: boolean;
}

export const CAPS: Readonly<Record<Mode, ModeCaps>> = {
  hook: {
    killClient: false,
    pendingAuth: false,
    tlsVerify: true,
    denyReason: false,
    disconnectAfterDeny: true,
    refusedAtOnceWhileDaemonDown: true,
    passThrough: false,
    managementInterface: false,
    spool: true,
    downEvent: true,
    learnAtConnect: true,
  },
  management: {
    killClient: true,
    pendingAuth: true,
    tlsVerify: false,
    denyReason: true,
    disconnectAfterDeny: false,
    refusedAtOnceWhileDaemonDown: false,
    passThrough: true,
    managementInterface: true,
    spool: false,
    downEvent: false,
    learnAtConnect: false,
  },
};

/** The daemon attached to the management interface of OpenVPN instance `instance`. */
export const attachedTo =
  (instance: string) =>
  (e: DaemonEvent): boolean =>
    e.channel === 'lifecycle' && e.data.what === 'source-attached' && e.data.instance === instance;

export interface ModeLabOptions {
  /**
   * false: the daemon runs with no control socket (the lab adds one to watch it otherwise), so
   * tools fall back to what OpenVPN says; the lab then waits on the daemon's log.
   */
  readonly watch?: boolean;
  /** Hook mode: the hooks OpenVPN calls. */
  readonly events?: EventName[];
  readonly extraServer?: string[];
  /** Extra recorder options (YAML lines). */
  readonly recorder?: string[];
  /** Hook mode: wraps the hook client (e.g. to delay its exit). */
  readonly hookPath?: (dir: string) => string;
  /** Management mode: clients must send a username and password. */
  readonly passwords?: boolean;
  /** Extra top-level YAML for the daemon's config. */
  readonly extraConfig?: string[];
  readonly pluginTimeout?: string;
  /** Management mode: the daemon's pass-through socket, with client-kill allowed unless `allowKill: false`. */
  readonly passThrough?: boolean;
  readonly allowKill?: boolean;
  /** The daemon's control socket (`flexscript status` from the daemon's own sessions). */
  readonly control?: boolean;
  /**
   * Hook mode: OpenVPN writes its status file (status-version 3) and a restarted daemon reads its
   * live clients from it. Management mode always has `status 3`.
   */
  readonly statusFile?: boolean;
  /** Plugin entries (YAML lines, e.g. `  - use: firewall`) before the recorder. */
  readonly plugins?: string[];
  /** Plugin entries after the recorder. */
  readonly pluginsAfter?: string[];
  /** OpenVPN, its clients and the daemon run in this network namespace. */
  readonly netns?: string;
  /** The server's tun device name (default: a unique one). */
  readonly serverDev?: string;
  /** The instance name (and management instance) in the daemon's config; default `e2e`. */
  readonly instance?: string;
}

export interface ModeLab {
  readonly mode: Mode;
  readonly caps: ModeCaps;
  readonly lab: Lab;
  readonly server: OpenVpnServer;
  readonly daemon: DaemonHandle;
  readonly port: number;
  readonly records: string;
  readonly configPath: string;
  /** The daemon's control socket, when asked for. */
  readonly controlSocket: string;
  /** The pass-through socket, when asked for. */
  readonly passThroughSocket: string;
  /** Hook mode: OpenVPN's status file, when asked for. */
  readonly statusFile: string;
  restartDaemon(): Promise<DaemonHandle>;
  /** Stops OpenVPN (SIGTERM, or SIGKILL for a crash) and starts it again on the same port. */
  restartServer(signal?: 'SIGTERM' | 'SIGKILL'): Promise<OpenVpnServer>;
  recordsOf(event: string): Record<string, unknown>[];
}

export async function modeLab(t: TestContext, mode: Mode, o: ModeLabOptions = {}): Promise<ModeLab> {
  const lab = await createLab(`${mode}-mode`, { netns: o.netns });
  t.after(() => lab.close());
  const work = ownedDir(join(lab.dir, 'work'));
  const records = join(work, 'records.jsonl');
  const socket = join(lab.dir, 'mgmt.sock');
  const instance = o.instance ?? 'e2e';
  const passThroughSocket = join(work, 'control.sock');
  const controlSocket = join(work, 'daemon-control.sock');
  const statusFile = join(work, 'openvpn-status.txt');
  const statusFileHere = mode === 'hook' && o.statusFile === true;
  if (statusFileHere) {
    // OpenVPN opens it as root and keeps an existing file's owner: the daemon (nobody) must read it
    writeFileSync(statusFile, '', { mode: 0o640 });
    chownSync(statusFile, 65534, 65534);
  }
  const source =
    mode === 'hook'
      ? ['hook:', `  dir: ${join(work, 'run')}`, '  group: nogroup', '  timeout: 5s', ...(statusFileHere ? [`  status-file: ${statusFile}`] : [])]
      : [
          'management:',
          '  instances:',
          `    - name: ${instance}`,
          `      socket: ${socket}`,
          ...(o.passThrough ? ['  pass-through:', `    socket: ${passThroughSocket}`, `    allow-kill: ${o.allowKill ?? true}`] : []),
        ];
  const yaml = [
    `instance: ${instance}`,
    ...source,
    ...(o.extraConfig ?? []),
    ...(o.control ? ['control:', `  socket: ${controlSocket}`, '  group: nogroup', '  mode: "0660"'] : []),
    'pipeline:',
    `  timeout: ${o.pluginTimeout ?? '1s'}`,
    'plugins:',
    ...(o.plugins ?? []),
    `  - path: ${RECORDER}`,
    '    options:',
    `      file: ${records}`,
    ...(o.recorder ?? []).map((l) => `      ${l}`),
    ...(o.pluginsAfter ?? []),
  ].join('\n');
  const configPath = writeConfig(lab.dir, yaml);
  const config = parseConfig(yaml, configPath).config;
  const sourceLines =
    mode === 'hook'
      ? hookModeLines(config.hook!, o.events ?? ['client-connect', 'client-disconnect', 'learn-address'], o.hookPath?.(lab.dir) ?? HOOK, {
          challenges: asksChallenges(config.plugins),
          pendingNotices: sendsPendingNotices(config.plugins),
        })
      : managementModeLines(config.management!.instances[0]!, { checksPasswords: o.passwords ?? false, daemonUser: 'nobody' });
  const port = await lab.allocPort();
  const statusLines = statusFileHere ? [`status ${statusFile} 1`, 'status-version 3'] : [];
  const serverOptions = { port, ...(o.serverDev ? { dev: o.serverDev } : {}), extraConfig: [...sourceLines, ...statusLines, ...(o.extraServer ?? [])] };
  let server = await lab.startServer(serverOptions);
  // OpenVPN on management-hold starts only once the daemon has released it
  const held = o.extraServer?.includes('management-hold') ?? false;
  if (!held) await server.waitForLog(/Initialization Sequence Completed/);
  const start = async () => {
    const d = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { netns: o.netns, watch: o.watch });
    if (mode === 'management' && o.watch === false) await d.waitForLog('attach', (l) => l.msg === 'attached to OpenVPN management interface');
    else if (mode === 'management') await d.waitForEvent('attach', attachedTo(instance));
    return d;
  };
  let daemon = await start();
  lab.track(() => daemon.stop());
  if (held) await server.waitForLog(/Initialization Sequence Completed/);
  return {
    mode,
    caps: CAPS[mode],
    lab,
    get server() {
      return server;
    },
    get daemon() {
      return daemon;
    },
    port,
    records,
    configPath,
    controlSocket,
    passThroughSocket,
    statusFile,
    restartDaemon: async () => {
      await daemon.stop();
      daemon = await start();
      return daemon;
    },
    restartServer: async (signal = 'SIGTERM') => {
      if (signal === 'SIGKILL') server.kill('SIGKILL');
      await server.stop();
      server = await lab.startServer(serverOptions);
      await server.waitForLog(/Initialization Sequence Completed/);
      return server;
    },
    recordsOf: (event) => readJsonLines(records).filter((r) => r.event === event),
  };
}

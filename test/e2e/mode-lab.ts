/**
 * One end-to-end setup for both event sources: a real OpenVPN 2.6 server running as nobody,
 * the real daemon (also nobody) with the recorder plugin, reached through hook mode or
 * management mode. Scenarios written against it run unchanged in both modes.
 */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load-config.ts';
import type { EventName } from '../../src/events/event-map.ts';
import { HOOK, ownedDir, readJsonLines, startDaemon, writeConfig, type DaemonHandle } from '../../src/lab/daemon-process.ts';
import { createLab, type Lab } from '../../src/lab/lab.ts';
import type { OpenVpnServer } from '../../src/lab/openvpn-process.ts';
import { hookModeLines } from '../../src/sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../../src/sources/management/openvpn-lines.ts';
import { RECORDER } from '../support/paths.ts';

export type Mode = 'hook' | 'management';
export const MODES: readonly Mode[] = ['hook', 'management'];

export interface ModeLabOptions {
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
  /** Management mode: the daemon's pass-through socket, with client-kill allowed. */
  readonly passThrough?: boolean;
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
  readonly lab: Lab;
  readonly server: OpenVpnServer;
  readonly daemon: DaemonHandle;
  readonly port: number;
  readonly records: string;
  readonly configPath: string;
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
  const source =
    mode === 'hook'
      ? ['hook:', `  dir: ${join(work, 'run')}`, '  group: nogroup', '  timeout: 5s']
      : [
          'management:',
          '  instances:',
          `    - name: ${instance}`,
          `      socket: ${socket}`,
          ...(o.passThrough ? ['  pass-through:', `    socket: ${join(work, 'control.sock')}`, '    allow-kill: true'] : []),
        ];
  const yaml = [
    `instance: ${instance}`,
    ...source,
    ...(o.extraConfig ?? []),
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
      ? hookModeLines(config.hook!, o.events ?? ['client-connect', 'client-disconnect', 'learn-address'], o.hookPath?.(lab.dir) ?? HOOK)
      : managementModeLines(config.management!.instances[0]!, { checksPasswords: o.passwords ?? false, daemonUser: 'nobody' });
  const port = await lab.allocPort();
  const serverOptions = { port, ...(o.serverDev ? { dev: o.serverDev } : {}), extraConfig: [...sourceLines, ...(o.extraServer ?? [])] };
  let server = await lab.startServer(serverOptions);
  // OpenVPN on management-hold starts only once the daemon has released it
  const held = o.extraServer?.includes('management-hold') ?? false;
  if (!held) await server.waitForLog(/Initialization Sequence Completed/);
  const start = async () => {
    const d = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { netns: o.netns });
    if (mode === 'management') await d.waitForLog('attach', (l) => l.msg === 'attached to OpenVPN management interface');
    return d;
  };
  let daemon = await start();
  lab.track(() => daemon.stop());
  if (held) await server.waitForLog(/Initialization Sequence Completed/);
  return {
    mode,
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

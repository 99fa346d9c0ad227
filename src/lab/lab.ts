/**
 * @module lab
 * A throwaway OpenVPN setup on loopback: a temporary folder, a PKI, servers and clients, with
 * unique ports, subnets and tun names. `close()` stops and removes everything it made, in
 * reverse order, even when a step fails; processes are also killed if this process exits.
 */
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPki, type Pki } from './pki.ts';
import {
  startClient,
  startServer,
  type ClientOptions,
  type ManagedProcess,
  type OpenVpnClient,
  type OpenVpnServer,
  type ServerOptions,
} from './openvpn-process.ts';

export interface Lab {
  readonly dir: string;
  /** The network namespace servers and clients run in, if any. */
  readonly netns?: string;
  readonly pki: Pki;
  /** A port free for both UDP and TCP on 127.0.0.1. */
  allocPort(): Promise<number>;
  startServer(o: Partial<ServerOptions> & { port: number }): Promise<OpenVpnServer>;
  startClient(o: Partial<ClientOptions> & { commonName: string; port: number }): Promise<OpenVpnClient>;
  /** Registers a cleanup step (run in reverse order by close). */
  track(cleanup: () => unknown): void;
  /** Registers a process to stop at close and to kill if this process exits. */
  adopt<P extends ManagedProcess>(proc: P): P;
  close(): Promise<void>;
}

const live = new Set<ManagedProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
/** If this process exits without close() (Ctrl-C, a crash), nothing it started may be left. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL');
    if (!process.env.FXS_KEEP) for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

let serial = 0;
/** A /24 and tun name unlikely to collide with another lab on this machine. */
function nextNetwork(): { subnet: string; dev: string } {
  const n = (process.pid * 7 + serial++) % 200;
  return { subnet: `10.${77 + (Math.floor(serial / 200) % 20)}.${n}.0`, dev: `fxs${process.pid % 10000}x${serial}` };
}

/** Below Linux's ephemeral range (32768+), so a client's source port cannot take it later. */
const PORT_RANGE = { min: 20000, max: 32000 };

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = createServer();
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () => {
      const udp = createSocket('udp4');
      udp.once('error', () => tcp.close(() => resolve(false)));
      udp.bind(port, '127.0.0.1', () => udp.close(() => tcp.close(() => resolve(true))));
    });
  });
}

async function freePort(): Promise<number> {
  for (;;) {
    const port = PORT_RANGE.min + Math.floor(Math.random() * (PORT_RANGE.max - PORT_RANGE.min));
    if (await bindable(port)) return port;
  }
}

export interface LabOptions {
  /** Servers and clients run inside this network namespace. */
  readonly netns?: string;
  /** Where the lab's directory is made (default: the system's temp directory). */
  readonly base?: string;
}

export async function createLab(name: string, options: LabOptions = {}): Promise<Lab> {
  installExitHook();
  const dir = await mkdtemp(join(options.base ?? tmpdir(), `flexscript-${name.replace(/[^a-z0-9-]/gi, '')}-`));
  // servers drop to nobody and must still reach their files
  await chmod(dir, 0o755);
  liveDirs.add(dir);
  const pki = await createPki(join(dir, 'pki'));
  const cleanups: (() => unknown)[] = [];
  const procs: ManagedProcess[] = [];
  let closed = false;
  const lab: Lab = {
    dir,
    netns: options.netns,
    pki,
    allocPort: freePort,
    adopt(proc) {
      procs.push(proc);
      live.add(proc);
      void proc.exited.then(() => live.delete(proc));
      return proc;
    },
    async startServer(o) {
      const net = nextNetwork();
      const server = await startServer({ dir: join(dir, `server-${o.port}`), pki, subnet: net.subnet, dev: net.dev, netns: options.netns, ...o });
      return lab.adopt(server);
    },
    async startClient(o) {
      return lab.adopt(await startClient({ dir: join(dir, 'clients'), pki, netns: options.netns, ...o }));
    },
    track(cleanup) {
      cleanups.push(cleanup);
    },
    async close() {
      if (closed) return;
      closed = true;
      // clients first, then servers, then what tests registered, then the files
      const clients = procs.filter((p) => 'commonName' in p);
      const servers = procs.filter((p) => !('commonName' in p));
      await Promise.allSettled(clients.map((p) => p.stop()));
      await Promise.allSettled(servers.map((p) => p.stop()));
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch {
          // one failing cleanup must not keep the others from running
        }
      }
      if (!process.env.FXS_KEEP) await rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    },
  };
  return lab;
}

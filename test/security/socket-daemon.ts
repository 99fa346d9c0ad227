/**
 * The real daemon (as nobody) with both line sockets: the control socket and management mode's
 * pass-through. No OpenVPN is needed: the management source keeps trying to attach in the
 * background, and both sockets answer meanwhile.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { askControl } from '../../src/cli/control.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { ownedDir, startDaemon, writeConfig, type DaemonHandle } from '../../src/lab/daemon-process.ts';

export interface SocketDaemon {
  readonly daemon: DaemonHandle;
  readonly dir: string;
  readonly control: string;
  readonly passThrough: string;
  /**
   * Fails the test unless the daemon is alive and answers status on its control socket. Unless
   * `busy`, first waits until the daemon has let go of every connection (so it has seen each
   * drop before being asked).
   */
  assertServing(what: string, busy?: boolean): Promise<void>;
  /** VmRSS or VmHWM of the daemon, in bytes. */
  memory(field: 'VmRSS' | 'VmHWM'): number;
}

export async function socketDaemon(t: TestContext, extra: string[] = []): Promise<SocketDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-sockets-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const work = ownedDir(join(dir, 'work'));
  const control = join(work, 'control.sock');
  const passThrough = join(work, 'pass-through.sock');
  const yaml = [
    'instance: sockets',
    'management:',
    '  instances:',
    '    - name: sockets',
    `      socket: ${join(dir, 'no-openvpn.sock')}`,
    '  pass-through:',
    `    socket: ${passThrough}`,
    'control:',
    `  socket: ${control}`,
    ...extra,
  ].join('\n');
  // not watched: these tests count and fill the control socket's connections themselves
  const daemon = await startDaemon(writeConfig(dir, yaml), join(dir, 'daemon.log'), { watch: false });
  t.after(() => daemon.stop());
  let exitCode: number | null | undefined;
  void daemon.exited.then((code) => (exitCode = code));
  return {
    daemon,
    dir,
    control,
    passThrough,
    async assertServing(what, busy = false) {
      const alive = () =>
        assert.equal(exitCode, undefined, `the daemon exited (${exitCode}) after ${what}:\n${readFileSync(daemon.logPath, 'utf8').slice(-3000)}`);
      if (!busy) {
        await waitFor(
          `the daemon to close its connections after ${what}`,
          () => {
            alive();
            return connectionsTo(control) + connectionsTo(passThrough) === 0;
          },
          {
            timeoutMs: 60_000,
          },
        );
      }
      alive();
      const answer = await askControl(control, { command: 'status' }, 30_000);
      assert.deepEqual(answer, { ok: true, sessions: [] }, `status after ${what}`);
      alive();
    },
    memory(field) {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'));
      assert.ok(m, `${field} of ${daemon.pid}`);
      return Number(m[1]) * 1024;
    },
  };
}

/** Connected unix sockets bound to `path`: the server's side of each connection it still holds. */
export function connectionsTo(path: string): number {
  // Num RefCount Protocol Flags Type St Inode Path; St 03 is connected
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[5] === '03' && f[7] === path;
    }).length;
}

/** Connects; resolves once connected. Errors are the caller's to expect, never unhandled. */
export function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
export function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('error', () => undefined);
    s.on('data', (d) => (text += d));
    s.on('close', () => resolve(text));
  });
}

/**
 * @module demo
 * `flexscript demo`: the product doing its main job on a throwaway setup. A temporary PKI, a
 * real OpenVPN server running as nobody, the daemon (also nobody) with the example plugins,
 * and a few real clients; it prints the events as the daemon decides them (watched through its
 * control socket, not read from its log), then removes everything it started and made, also when
 * stopped early. The caller owns the terminal and the signals: it passes `out` and a stop signal.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.ts';
import { createLab, type Lab } from '../lab/lab.ts';
import { HOOK, ownedDir, startDaemon, writeConfig, type DaemonEvent, type DaemonHandle } from '../lab/daemon-process.ts';
import { examplePluginsYaml } from '../lab/example-plugins.ts';
import { waitFor } from '../lab/wait.ts';
import { hookModeLines } from '../sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../sources/management/openvpn-lines.ts';
import { missingForDemo, missingMessage } from './demo-requirements.ts';
import { sessionsTable } from './sessions.ts';
import { SqliteStore } from '../store/sqlite-store.ts';

export interface DemoOptions {
  readonly clients: number;
  /** How OpenVPN hands events to the daemon: its hook client (default) or its management interface. */
  readonly mode?: 'hook' | 'management';
  readonly duration: number;
  /** Where the demo's lines go (the CLI passes the terminal). */
  readonly out: (line: string) => void;
  /** Aborted to stop early (the CLI aborts it on SIGINT and SIGTERM): the demo then cleans up and returns. */
  readonly signal?: AbortSignal;
}

/** The demo's cast: who connects, and what the example plugins make of them. */
const CAST = ['alice', 'ops-bob', 'lost-laptop-17', "robert'); DROP TABLE vpn;--", 'carol', 'dave', 'erin', 'frank'];

function demoConfig(work: string, mode: 'hook' | 'management', socket: string): string {
  const source =
    mode === 'hook'
      ? `hook:
  dir: ${join(work, 'run')}
  group: nogroup`
      : `management:
  instances:
    - name: demo
      socket: ${socket}`;
  return `# written by flexscript demo
instance: demo
${source}
store:
  sqlite: ${join(work, 'accounting.db')}
${examplePluginsYaml({ sessionLog: join(work, 'sessions.jsonl'), admins: ['ops-*'], deny: 'lost-laptop-17' })}  - use: accounting
`;
}

/** What the accounting plugin recorded, as `flexscript sessions` shows it. */
async function showAccounting(db: string, out: (line: string) => void): Promise<void> {
  if (!existsSync(db)) return;
  const store = new SqliteStore(db);
  try {
    const sessions = await store.sessions({});
    const denials = await store.denials({});
    out(`  accounting (SQLite): ${sessions.length} session(s), ${denials.length} denial(s)\n`);
    out(sessionsTable(sessions).replace(/^/gm, '    '));
    for (const d of denials) out(`    denied ${JSON.stringify(d.commonName ?? d.username ?? '')} by ${d.plugin ?? '?'}: ${d.reason}`);
  } finally {
    await store.close();
  }
}

/** One event the daemon published as a line for a person, or nothing for events not worth showing. */
function describe(e: DaemonEvent): string | undefined {
  const t = e.time.slice(11, 19);
  switch (e.channel) {
    case 'decision': {
      const d = e.data;
      // a malformed event, or the disconnect of a client that was denied: no plugin saw it
      if (d.unhandled !== undefined) return undefined;
      const who = JSON.stringify(d.commonName ?? '');
      if (d.event === 'client-connect' && d.verdict === 'deny') return `${t}  DENIED      ${who} by plugin ${d.plugin}: ${d.reason}`;
      if (d.event === 'client-connect') {
        // management mode answers before OpenVPN picks the address: the address line shows it then
        const gets = d.vpnAddress === undefined ? '' : ` gets ${d.vpnAddress}`;
        return `${t}  connect     ${who} from ${d.realAddress}:${d.realPort}${gets}; pushed ${(d.config ?? []).join(' | ') || 'nothing'}`;
      }
      if (d.event === 'learn-address') return `${t}  address     ${d.operation} ${d.address}${d.commonName ? ` for ${who}` : ''}`;
      if (d.event === 'client-disconnect') return `${t}  disconnect  ${who} after ${d.duration}s, ${d.bytesReceived} bytes in, ${d.bytesSent} bytes out`;
      return undefined;
    }
    case 'plugin-call':
      return e.data.outcome === 'error' || e.data.outcome === 'timeout'
        ? `${t}  error       plugin ${e.data.plugin} on ${e.data.event}: ${e.data.failure}`
        : undefined;
    case 'root-action':
      return e.data.code === undefined ? undefined : `${t}  error       root stage ${e.data.action}: ${e.data.code}`;
    case 'lifecycle':
      if (e.data.what === 'started') return `${t}  daemon      started as nobody with plugins ${e.data.plugins.join(', ')}`;
      if (e.data.what === 'reload-failed') return `${t}  error       reload refused: ${e.data.problems.join('; ')}`;
      return undefined;
    default:
      return undefined;
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const { out } = o;
  if (process.getuid?.() !== 0) {
    out('flexscript demo needs root: it creates a tun device and runs OpenVPN and the daemon as nobody.\n  sudo npm run demo');
    return 1;
  }
  const missing = missingForDemo();
  if (missing.length > 0) {
    out(missingMessage(missing));
    return 1;
  }
  let lab: Lab | undefined;
  let daemon: DaemonHandle | undefined;
  let printed = 0;
  const show = () => {
    const lines = daemon?.events() ?? [];
    for (; printed < lines.length; printed++) {
      const text = describe(lines[printed]!);
      if (text) out(text);
    }
  };
  const ticker = setInterval(show, 200);
  let interrupted = false;
  const onStop = () => {
    interrupted = true;
    out('\ninterrupted: cleaning up');
  };
  if (o.signal?.aborted) onStop();
  else o.signal?.addEventListener('abort', onStop, { once: true });
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const end = Date.now() + ms;
      const timer = setInterval(() => {
        if (interrupted || Date.now() >= end) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
  const mode = o.mode ?? 'hook';
  try {
    out(`openvpn-flexscript demo: a throwaway OpenVPN server and clients on 127.0.0.1, ${mode} mode`);
    lab = await createLab('demo');
    const work = ownedDir(join(lab.dir, 'work'));
    // management mode: OpenVPN creates the socket (as root) and lets only the daemon's user in
    const yaml = demoConfig(work, mode, join(lab.dir, 'mgmt.sock'));
    const configPath = writeConfig(lab.dir, yaml);
    const config = parseConfig(yaml, configPath).config;
    out(`  folder ${lab.dir} (removed at the end)`);
    const port = await lab.allocPort();
    const l = lab;
    const startDemoDaemon = async () => {
      const started = await startDaemon(configPath, join(l.dir, 'daemon.log'));
      l.track(() => started.stop());
      return started;
    };
    let server: Awaited<ReturnType<Lab['startServer']>>;
    if (mode === 'hook') {
      // the hook client denies connects while no daemon listens: the daemon first
      daemon = await startDemoDaemon();
      server = await lab.startServer({ port, extraConfig: hookModeLines(config.hook!, ['client-connect', 'client-disconnect', 'learn-address'], HOOK) });
      await server.waitForLog(/Initialization Sequence Completed/);
    } else {
      // OpenVPN first: the daemon attaches to its management socket, and reattaches if it restarts
      server = await lab.startServer({
        port,
        extraConfig: managementModeLines(config.management!.instances[0]!, { checksPasswords: false, daemonUser: 'nobody' }),
      });
      await server.waitForLog(/Initialization Sequence Completed/);
      daemon = await startDemoDaemon();
      await daemon.waitForEvent('attach', (e) => e.channel === 'lifecycle' && e.data.what === 'source-attached' && e.data.instance === 'demo');
      out(`  daemon attached to OpenVPN's management interface ${config.management!.instances[0]!.socket}`);
    }
    const d = daemon;
    out(`  OpenVPN server up on udp 127.0.0.1:${port}, running as nobody\n`);
    const names = Array.from({ length: o.clients }, (_, i) => CAST[i] ?? `client-${i + 1}`);
    const clients = await Promise.all(names.map((commonName) => lab!.startClient({ commonName, port, extraConfig: ['explicit-exit-notify 1'] })));
    await Promise.all(
      clients.map((c) =>
        c
          .waitConnected()
          .catch(() => c.waitAuthFailed())
          .catch(() => undefined),
      ),
    );
    if (!interrupted) await pause(o.duration * 1000);
    out('\n  clients leaving');
    const connected = clients.filter((c) => c.log().includes('Initialization Sequence Completed')).length;
    await Promise.all(clients.map((c) => c.stop()));
    // OpenVPN reports each exit; wait for them (bounded) so the disconnects show
    const disconnects = () =>
      d.events().filter((e) => e.channel === 'decision' && e.data.event === 'client-disconnect' && e.data.unhandled === undefined).length;
    await waitFor('disconnects', () => interrupted || disconnects() >= connected, { timeoutMs: 15_000 }).catch(() => undefined);
    show();
    const sessions = existsSync(join(work, 'sessions.jsonl')) ? readFileSync(join(work, 'sessions.jsonl'), 'utf8').split('\n').filter(Boolean).length : 0;
    out(`\n  ${connected} of ${clients.length} clients connected; session-log plugin wrote ${sessions} record(s)`);
    await showAccounting(join(work, 'accounting.db'), out);
    return 0;
  } catch (err) {
    out(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    clearInterval(ticker);
    show();
    await lab?.close();
    o.signal?.removeEventListener('abort', onStop);
    out('  cleaned up: processes stopped, tun device gone, files removed');
  }
}

/**
 * @module demo
 * `flexscript demo`: the product doing its main job on a throwaway setup. A temporary PKI, a
 * real OpenVPN server running as nobody, the daemon (also nobody) with the example plugins,
 * and a few real clients; it prints the events as the daemon decides them, then removes
 * everything it started and made, also on Ctrl-C.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.ts';
import { createLab, type Lab } from '../lab/lab.ts';
import { HOOK, ownedDir, startDaemon, writeConfig, type DaemonHandle, type LogLine } from '../lab/daemon-process.ts';
import { examplePluginsYaml } from '../lab/example-plugins.ts';
import { openvpnBinary } from '../lab/openvpn-process.ts';
import { waitFor } from '../lab/wait.ts';
import { hookModeLines } from '../sources/hook/openvpn-lines.ts';
import { sessionsTable } from '../cli/sessions.ts';
import { SqliteStore } from '../store/sqlite-store.ts';

export interface DemoOptions {
  readonly clients: number;
  readonly duration: number;
  readonly out?: (line: string) => void;
}

/** The demo's cast: who connects, and what the example plugins make of them. */
const CAST = ['alice', 'ops-bob', 'lost-laptop-17', "robert'); DROP TABLE vpn;--", 'carol', 'dave', 'erin', 'frank'];

function demoConfig(work: string): string {
  return `# written by flexscript demo
instance: demo
hook:
  dir: ${join(work, 'run')}
  group: nogroup
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

/** One daemon log line as a line for a person, or nothing for lines not worth showing. */
export function describe(l: LogLine): string | undefined {
  const t = String(l.time ?? '').slice(11, 19);
  const who = JSON.stringify(l.commonName ?? '');
  switch (l.msg) {
    case 'client-connect':
      return `${t}  connect     ${who} from ${l.realAddress}:${l.realPort} gets ${l.vpnAddress}; pushed ${((l.config as string[]) ?? []).join(' | ') || 'nothing'}`;
    case 'client-connect denied':
      return `${t}  DENIED      ${who} by plugin ${l.plugin}: ${l.reason}`;
    case 'learn-address':
      return `${t}  address     ${l.operation} ${l.address}${l.commonName ? ` for ${who}` : ''}`;
    case 'client-disconnect':
      return `${t}  disconnect  ${who} after ${l.duration}s, ${l.bytesReceived} bytes in, ${l.bytesSent} bytes out`;
    case 'flexscript daemon started':
      return `${t}  daemon      started as nobody with plugins ${(l.plugins as string[]).join(', ')}`;
    default:
      return l.level !== undefined && l.level >= 50 ? `${t}  error       ${l.msg}` : undefined;
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (process.getuid?.() !== 0) {
    out('flexscript demo needs root: it creates a tun device and runs OpenVPN and the daemon as nobody.\n  sudo npm run demo');
    return 1;
  }
  if (!existsSync(openvpnBinary())) {
    out('flexscript demo needs OpenVPN 2.6. On Debian or Ubuntu:\n  sudo apt-get install -y openvpn');
    return 1;
  }
  let lab: Lab | undefined;
  let daemon: DaemonHandle | undefined;
  let printed = 0;
  const show = () => {
    const lines = daemon?.logs() ?? [];
    for (; printed < lines.length; printed++) {
      const text = describe(lines[printed]!);
      if (text) out(text);
    }
  };
  const ticker = setInterval(show, 200);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    out('\ninterrupted: cleaning up');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
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
  try {
    out('openvpn-flexscript demo: a throwaway OpenVPN server and clients on 127.0.0.1, hook mode');
    lab = await createLab('demo');
    const work = ownedDir(join(lab.dir, 'work'));
    const yaml = demoConfig(work);
    const configPath = writeConfig(lab.dir, yaml);
    out(`  folder ${lab.dir} (removed at the end)`);
    daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'));
    const d = daemon;
    lab.track(() => d.stop());
    const port = await lab.allocPort();
    const hook = parseConfig(yaml, configPath).config.hook!;
    const server = await lab.startServer({
      port,
      extraConfig: hookModeLines(hook, ['client-connect', 'client-disconnect', 'learn-address'], HOOK),
    });
    await server.waitForLog(/Initialization Sequence Completed/);
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
    await waitFor('disconnects', () => interrupted || d.logs().filter((l) => l.msg === 'client-disconnect').length >= connected, { timeoutMs: 15_000 }).catch(
      () => undefined,
    );
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
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    out('  cleaned up: processes stopped, tun device gone, files removed');
  }
}

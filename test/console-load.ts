/**
 * The operator console's load time with real clients, run by hand (not part of the suite):
 *
 *   node --import tsx test/console-load.ts [--clients 1000] [--loads 5]
 *
 * Starts a real OpenVPN server (management mode, a /16 pool), the real daemon (accounting in
 * SQLite, the control socket), N real OpenVPN clients, then `flexscript console` from dist/,
 * and loads the live page in chromium (playwright-core) `--loads` times after logging in, each
 * to the `load` event with every client's row in the table. Prints each load, the median and
 * the worst, the server's part (time to the first byte) and the machine's load average, and
 * writes them to test-artifacts/console/load-time-real.txt. Everything it started is stopped
 * at the end, on Ctrl-C too. Needs root (OpenVPN's tun device, the daemon as nobody).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { parseConfig } from '../src/config/load-config.ts';
import { controlSocketLink } from '../src/console/daemon-link.ts';
import { ownedDir, REPO, startDaemon, writeConfig } from '../src/lab/daemon-process.ts';
import { ensureFreshBuild } from '../src/lab/fresh-build.ts';
import { createLab } from '../src/lab/lab.ts';
import type { OpenVpnClient } from '../src/lab/openvpn-process.ts';
import { waitFor } from '../src/lab/wait.ts';
import { managementModeLines } from '../src/sources/management/openvpn-lines.ts';
import { hashPassword } from '../src/util/password-hash.ts';
import { startConsole } from './support/console-process.ts';
import { freeLoopbackPort } from './support/free-port.ts';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000' }, loads: { type: 'string', default: '5' } } });
const CLIENTS = Number(values.clients);
const LOADS = Number(values.loads);
const out = (line: string) => process.stdout.write(`${line}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

// Ctrl-C: exit normally, so the lab's exit hook stops every process it started
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: OpenVPN needs its tun device and the daemon runs as nobody');
  ensureFreshBuild(REPO);
  const lab = await createLab('console-load');
  let consoleProcess: ChildProcess | undefined;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
  process.once('exit', () => consoleProcess?.kill('SIGKILL'));
  try {
    const work = ownedDir(join(lab.dir, 'work'));
    const usersFile = join(lab.dir, 'console-users');
    writeFileSync(usersFile, `olga:${await hashPassword('load-pw')}:operator\n`, { mode: 0o640 });
    const controlSocket = join(work, 'control.sock');
    const yaml = [
      'instance: load',
      'management:',
      '  instances:',
      '    - name: load',
      `      socket: ${join(lab.dir, 'mgmt.sock')}`,
      'store:',
      `  sqlite: ${join(work, 'accounting.db')}`,
      'control:',
      `  socket: ${controlSocket}`,
      '  allow-kill: true',
      'console:',
      '  auth:',
      `    users-file: ${usersFile}`,
      `  audit-log: ${join(lab.dir, 'audit.jsonl')}`,
      'plugins:',
      '  - use: accounting',
      '',
    ].join('\n');
    const configPath = writeConfig(lab.dir, yaml);
    const instance = parseConfig(yaml, configPath).config.management!.instances[0]!;
    const port = await lab.allocPort();
    const server = await lab.startServer({
      port,
      subnet: `10.${100 + (process.pid % 40)}.0.0`,
      netmask: '255.255.0.0',
      extraConfig: [...managementModeLines(instance, { checksPasswords: false, daemonUser: 'nobody' }), 'management-hold', 'hand-window 120'],
    });
    const daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { watch: false });
    lab.track(() => daemon.stop());
    await server.waitForLog(/Initialization Sequence Completed/, 60_000);
    out(`starting ${CLIENTS} OpenVPN clients (load average ${load()})`);
    const t0 = Date.now();
    const clients: OpenVpnClient[] = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await lab.startClient({ commonName: `load-${i}`, port }));
    const link = controlSocketLink(controlSocket);
    let last = 0;
    await waitFor(
      `${CLIENTS} live sessions in the daemon`,
      async () => {
        if (!server.running) throw new Error(`OpenVPN exited; see ${server.logPath}`);
        const n = (await link.status().catch(() => [])).length;
        if (Date.now() - last > 10_000) {
          last = Date.now();
          out(`  ${n}/${CLIENTS} live after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        }
        return n >= CLIENTS;
      },
      { timeoutMs: 1_800_000, intervalMs: 2000 },
    );
    out(`${CLIENTS} clients live after ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const consolePort = await freeLoopbackPort();
    const started = await startConsole(['--config', configPath, '--listen', `127.0.0.1:${consolePort}`]);
    consoleProcess = started.child;
    const { url } = started;
    const page = await browser.newPage();
    await page.goto(`${url}/login`);
    await page.fill('input[name=user]', 'olga');
    await page.fill('input[name=password]', 'load-pw');
    await page.click('form.login button');
    await page.waitForSelector('#live');
    const times: { total: number; firstByte: number; rows: number; loadAverage: string }[] = [];
    for (let i = 0; i < LOADS; i++) {
      const started = performance.now();
      await page.goto(url, { waitUntil: 'load' });
      const total = performance.now() - started;
      const firstByte = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        return nav.responseStart - nav.requestStart;
      });
      const rows = await page.locator('#live-rows tr[data-session]').count();
      times.push({ total, firstByte, rows, loadAverage: load() });
      out(`load ${i + 1}: ${total.toFixed(0)} ms (first byte after ${firstByte.toFixed(0)} ms), ${rows} rows, load average ${load()}`);
      if (rows < CLIENTS) throw new Error(`the page showed ${rows} rows, not ${CLIENTS}`);
    }
    const sorted = times.map((x) => x.total).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const worst = sorted.at(-1)!;
    const fb = times.map((x) => x.firstByte).sort((a, b) => a - b);
    const report = [
      `live page with ${CLIENTS} real OpenVPN clients (management mode, real daemon, flexscript console from dist/, chromium):`,
      `median ${median.toFixed(0)} ms, worst ${worst.toFixed(0)} ms over ${LOADS} loads (${sorted.map((x) => x.toFixed(0)).join(', ')} ms);`,
      `server part (first byte) median ${fb[Math.floor(fb.length / 2)]!.toFixed(0)} ms; load average during the loads ${times.map((x) => x.loadAverage.split(',')[0]).join(', ')} (2 cores)`,
    ].join('\n');
    out(report);
    mkdirSync(join(REPO, 'test-artifacts', 'console'), { recursive: true });
    writeFileSync(join(REPO, 'test-artifacts', 'console', 'load-time-real.txt'), `${new Date().toISOString()}\n${report}\n`);
  } finally {
    consoleProcess?.kill('SIGTERM');
    await browser.close();
    out('stopping the clients, OpenVPN and the daemon');
    await lab.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`console-load: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

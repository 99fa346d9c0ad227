/**
 * The README's hook-mode path, end to end: `flexscript init --mode hook`, the config edited as
 * an operator would (firewall and accounting on, the root stage installed), `flexscript check`,
 * real OpenVPN started with the lines init wrote, plus the `down` hook the firewall adds, as
 * `flexscript openvpn-config` prints them (and, like Debian's openvpn-server@ unit, a
 * `--status ... --status-version 2` on its command line before `--config`), the daemon and
 * clients. Then the daemon is killed with SIGKILL and started again, as systemd's
 * Restart=on-failure would: every client keeps its firewall set element through the restart
 * (polled the whole time) and stays connected. OpenVPN and the daemon run as nobody inside a
 * network namespace; the root stage runs through real sudo there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLEXSCRIPT, lifecycleOf, RUN_AS, startDaemon, type DaemonHandle } from '../../src/lab/daemon-process.ts';
import { createLab } from '../../src/lab/lab.ts';
import { openvpnBinary, startProcess, type OpenVpnClient } from '../../src/lab/openvpn-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { rootCommand } from '../../src/root/sudoers.ts';
import { installSudoers, rootStagesOf, run, runOk, trustedTempDir, uniqueSuffix } from '../root/harness.ts';
import { pushedAddress } from '../support/netns-lab.ts';

const isRoot = process.getuid?.() === 0;
const hasOpenVpn = existsSync(openvpnBinary());
const skip = !isRoot ? 'needs root' : !hasOpenVpn ? 'needs openvpn' : false;

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

/** Creates what a systemd-tmpfiles file asks for (`d` and `f` lines), under `base`. */
async function applyTmpfiles(text: string, base: string): Promise<void> {
  const ids = (name: string, file: string) => {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [n, , id] = line.split(':');
      if (n === name) return Number(id);
    }
    throw new Error(`${name} not in ${file}`);
  };
  for (const line of text.split('\n')) {
    const [type, path, mode, user, group] = line.trim().split(/\s+/);
    if (!type || type.startsWith('#') || !path) continue;
    const target = join(base, path);
    if (type === 'd') await mkdir(target, { recursive: true });
    else if (type === 'f') await writeFile(target, '', { flag: 'a' });
    else throw new Error(`unexpected tmpfiles line: ${line}`);
    await chown(target, ids(user!, '/etc/passwd'), ids(group!, '/etc/group'));
    await run(['chmod', mode!, target]);
  }
}

test('a daemon killed and restarted keeps every live client in its firewall set, and the clients stay connected', { skip, timeout: 300_000 }, async (t) => {
  const netns = `fxs-restart-${uniqueSuffix()}`;
  const dev = `fxr${uniqueSuffix().slice(0, 6)}`;
  // the machine's root: /run, /var and /etc of the setup live below it (root-owned up to /)
  const base = await trustedTempDir('restart-');
  const etc = join(base, 'etc');
  const rootYaml = join(base, 'root.yaml');
  let sudoers = '';
  // registered first: runs after the lab has stopped its processes
  t.after(async () => {
    for (const pid of await rootStagesOf(rootYaml)) process.kill(pid, 'SIGKILL');
    if (sudoers) await rm(sudoers, { force: true });
    await run(['ip', 'netns', 'del', netns]);
    await rm(base, { recursive: true, force: true });
  });

  // 1. flexscript init, as the README says
  const init = flexscript('init', '--dir', etc, '--mode', 'hook', '--user', 'nobody', '--group', 'nogroup');
  assert.equal(init.status, 0, init.stderr);

  // 2. the operator's edits: firewall on, the root stage installed; the lab moves /run and /var below base
  const relocate = (text: string) => text.replace(/(^|[\s"])\/run\//gm, `$1${base}/run/`).replace(/ \/var\//g, ` ${base}/var/`);
  const configPath = join(etc, 'flexscript.yaml');
  let inFirewall = false;
  const config = relocate(await readFile(configPath, 'utf8'))
    .split('\n')
    .map((line) => {
      if (line === '  # - use: firewall') inFirewall = true;
      const out = inFirewall ? line.replace(/^ {2}# /, '  ') : line;
      if (line.startsWith('  #     default-group:')) inFirewall = false;
      if (line === '# root:') return 'root:';
      if (line.startsWith('#   config: ')) return `  config: ${rootYaml}`;
      return out;
    })
    .join('\n');
  assert.match(config, /^ {2}- use: firewall$/m);
  assert.match(config, /^ {2}- use: accounting$/m);
  assert.match(config, /^root:\n {2}config: /m);
  await writeFile(configPath, config);
  const initRoot = await readFile(join(etc, 'root.yaml'), 'utf8');
  // the operator names OpenVPN's tun device and its client address pool
  const ours = initRoot.replace(/^vpn-networks:.*$/m, '').replace(/^vpn-interfaces:.*$/m, `vpn-interfaces: [${dev}]\nvpn-networks: [10.66.0.0/24]`);
  await writeFile(rootYaml, ours, { mode: 0o644 });
  // what the tmpfiles.d drop-in and the unit's RuntimeDirectory=, StateDirectory=, LogsDirectory= make
  await applyTmpfiles(await readFile(join(etc, 'tmpfiles-flexscript.conf'), 'utf8'), base);
  for (const d of ['var/lib/flexscript', 'var/log/flexscript']) {
    await mkdir(join(base, d, '..'), { recursive: true, mode: 0o755 });
    await mkdir(join(base, d), { mode: 0o750 });
    await chown(join(base, d), RUN_AS.uid, RUN_AS.gid);
  }
  sudoers = await installSudoers('nobody', rootCommand(rootYaml), base);

  // 3. OpenVPN's config: the lab's server plus the lines init wrote
  await runOk(['ip', 'netns', 'add', netns]);
  await runOk(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  const lab = await createLab('restart', { netns });
  t.after(() => lab.close());
  const port = await lab.allocPort();
  const serverConf = join(lab.dir, 'server.conf');
  // with the firewall on, OpenVPN's `down` hook is wanted too: the operator prints the lines again
  const printed = flexscript('openvpn-config', '--config', configPath, '--mode', 'hook');
  assert.equal(printed.status, 0, printed.stderr);
  const added = printed.stdout;
  const written = relocate(await readFile(join(etc, 'openvpn-server.conf.add'), 'utf8'));
  for (const line of written.split('\n').filter((l) => l && !l.startsWith('#'))) assert.ok(added.includes(line), `openvpn-config prints init's line ${line}`);
  await writeFile(
    serverConf,
    [
      `port ${port}`,
      'proto udp',
      'local 127.0.0.1',
      `dev ${dev}`,
      'dev-type tun',
      'topology subnet',
      'server 10.66.0.0 255.255.255.0',
      `ca ${lab.pki.caCert}`,
      `cert ${lab.pki.serverCert}`,
      `key ${lab.pki.serverKey}`,
      'dh none',
      'user nobody',
      'group nogroup',
      'persist-key',
      'persist-tun',
      'keepalive 10 60',
      'verb 3',
      added,
    ].join('\n'),
  );

  // 4. flexscript check passes on this setup
  // no installed units: another test run may be installing the .deb (its flexscriptd.service) now
  const noUnits = join(base, 'no-units');
  mkdirSync(noUnits);
  const check = flexscript('check', '--config', configPath, '--openvpn-config', serverConf, '--sudoers', sudoers, '--unit-root', noUnits);
  assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
  const statusFile = /^ {2}status-file: (\S+)$/m.exec(config)?.[1];
  assert.ok(statusFile, 'init wrote hook.status-file');

  // 5. OpenVPN as Debian's unit starts it: --status on the command line before --config
  const debianStatusDir = join(base, 'run/openvpn-server');
  await mkdir(debianStatusDir, { recursive: true, mode: 0o710 });
  const debianStatus = join(debianStatusDir, 'status-vpn.log');
  const server = lab.adopt(
    startProcess(
      openvpnBinary(),
      ['--status', debianStatus, '--status-version', '2', '--suppress-timestamps', '--config', serverConf],
      join(lab.dir, 'server.log'),
      netns,
    ),
  );
  await server.waitForLog(/Initialization Sequence Completed/);

  let daemon: DaemonHandle = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { netns });
  lab.track(() => daemon.stop());

  const sets = async (): Promise<Record<string, string[]>> => {
    const out: Record<string, string[]> = {};
    for (const group of ['staff', 'everyone']) {
      const r = await run(['ip', 'netns', 'exec', netns, 'nft', '-j', 'list', 'set', 'inet', 'flexscript', `g_${group}_v4`]);
      const doc = r.code === 0 ? (JSON.parse(r.stdout) as { nftables: { set?: { elem?: string[] } }[] }) : { nftables: [] };
      out[group] = [...(doc.nftables.find((i) => i.set)?.set?.elem ?? [])].sort();
    }
    return out;
  };
  const connect = async (commonName: string): Promise<{ client: OpenVpnClient; address: string }> => {
    const client = await lab.startClient({ commonName, port, extraConfig: ['explicit-exit-notify 1'] });
    await client.waitConnected(60_000);
    return { client, address: pushedAddress(client.pushReply()) };
  };
  const setsBecome = async (want: Record<string, string[]>, what: string) => {
    let last = {};
    await waitFor(
      what,
      async () => {
        last = await sets();
        return JSON.stringify(last) === JSON.stringify(Object.fromEntries(Object.entries(want).map(([g, a]) => [g, [...a].sort()])));
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; sets are ${JSON.stringify(last)}, want ${JSON.stringify(want)}`);
    });
  };

  // 6. clients connect through the hooks and deferral (OpenVPN's tmp-dir from init)
  const alice = await connect('alice');
  const bob = await connect('bob');
  const carol = await connect('carol');
  const before = { staff: [alice.address], everyone: [bob.address, carol.address].sort() };
  await setsBecome(before, 'every client in its group');
  await waitFor(
    'all three in the status file',
    () => ['alice', 'bob', 'carol'].every((cn) => new RegExp(`^CLIENT_LIST\\t${cn}\\t`, 'm').test(readFileSync(statusFile!, 'utf8'))),
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  assert.equal(existsSync(debianStatus), false, "the config's status lines win over the command line's");

  // 7. the crash: SIGKILL, then a new daemon, as systemd's Restart=on-failure does
  daemon.signal('SIGKILL');
  await daemon.exited;
  const samples: Record<string, string[]>[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await sets());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    daemon = await startDaemon(configPath, join(lab.dir, 'daemon.log'), { netns });
    // the first reconcile, and the second look at the status file a few seconds later
    await daemon.waitForEvent('first reconcile', lifecycleOf('kernel-reconciled'), 60_000);
    const count = (pred: ReturnType<typeof lifecycleOf>) => daemon.events().filter(pred).length;
    const statusRead = lifecycleOf('sessions-rebuilt', (m) => m.source === 'hook');
    await waitFor('the status file read twice', () => count(statusRead) >= 2, { timeoutMs: 60_000, intervalMs: 200 });
    await waitFor('a reconcile after the second read', () => count(lifecycleOf('kernel-reconciled')) >= 2, { timeoutMs: 30_000, intervalMs: 200 });
  } finally {
    sampling = false;
    await sampler;
  }
  assert.ok(samples.length > 5, `sampled the sets ${samples.length} times`);
  const missing = samples.find((s) => JSON.stringify(s) !== JSON.stringify(before));
  assert.equal(missing, undefined, `a set lost a live client during the restart: ${JSON.stringify(missing)}, want ${JSON.stringify(before)}`);

  // 8. the clients never noticed: still running, connected once
  for (const c of [alice, bob, carol]) {
    assert.ok(c.client.running, `${c.client.commonName} still runs`);
    assert.equal(c.client.log().match(/Initialization Sequence Completed/g)?.length, 1, `${c.client.commonName} connected once, never again`);
  }
  // the restarted daemon knows them: bob's disconnect takes him out; a new client gets in
  await bob.client.stop();
  const dave = await connect('dave');
  await setsBecome({ staff: [alice.address], everyone: [carol.address, dave.address] }, 'bob out, dave in, after the restart');
});

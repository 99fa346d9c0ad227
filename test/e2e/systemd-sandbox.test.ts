/**
 * The README's path under the units Debian 12 ships, on a machine without systemd as PID 1: the
 * units' sandboxes are rebuilt from the unit files themselves (test/support/unit-sandbox.ts):
 * Debian's openvpn-server@.service (the installed one, else a fixture with its settings) with
 * the drop-in `flexscript init` writes, and init's flexscriptd.service. OpenVPN starts as root
 * with a private /tmp, ProtectSystem=true and LimitNPROC from its unit, and drops to nobody
 * itself; the daemon starts as its unit's user under ProtectSystem=strict. Both share a private
 * /run, /var/lib and /var/log (the test's "machine"), prepared by systemd-tmpfiles and
 * systemd-sysusers from the files init wrote.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { FLEXSCRIPT } from '../../src/lab/daemon-process.ts';
import { createLab, type Lab } from '../../src/lab/lab.ts';
import { openvpnBinary } from '../../src/lab/openvpn-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { trustedTempDir } from '../root/harness.ts';
import { inMachine, startUnit, type MachineBind } from '../support/unit-sandbox.ts';

const isRoot = process.getuid?.() === 0;
const tools = ['unshare', 'setpriv', 'prlimit', 'systemd-tmpfiles', 'systemd-sysusers'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
const skip = !isRoot
  ? 'needs root'
  : !existsSync(openvpnBinary())
    ? 'needs openvpn'
    : !tools
      ? 'needs unshare, setpriv, prlimit, systemd-tmpfiles, systemd-sysusers'
      : false;

const DEBIAN_UNIT = '/lib/systemd/system/openvpn-server@.service';
const FIXTURE_UNIT = new URL('../fixtures/systemd/openvpn-server@.service', import.meta.url).pathname;
const DEBIAN_TMPFILES = '/usr/lib/tmpfiles.d/openvpn.conf';

interface Machine {
  readonly base: string;
  readonly lab: Lab;
  readonly etc: string;
  readonly unitRoot: string;
  readonly binds: MachineBind[];
  readonly port: number;
  /** Runs `flexscript ARGS` inside the machine. */
  flexscript(...args: string[]): ReturnType<typeof spawnSync>;
  /** Starts a unit in its sandbox. */
  start(unit: string): ReturnType<typeof startUnit>;
  /** Installs a file of init's into the machine's unit directories. */
  installUnitFile(from: string, to: string): void;
}

async function machine(t: TestContext, mode: 'hook' | 'management'): Promise<Machine> {
  const base = await trustedTempDir(`sandbox-${mode}-`);
  t.after(() => rmSync(base, { recursive: true, force: true }));
  // the lab (PKI, clients) outside /tmp: OpenVPN's unit has a private one
  const lab = await createLab(`sandbox-${mode}`, { base });
  const processes: { stop(): Promise<void> }[] = [];
  // registered after the lab's close: runs first, so the units stop before the lab's files go
  t.after(async () => {
    for (const p of processes.reverse()) await p.stop();
  });
  const priv = (name: string, mode = 0o755) => {
    const p = join(base, 'machine', name);
    mkdirSync(p, { recursive: true, mode });
    return p;
  };
  const binds: MachineBind[] = [
    { target: '/run', source: priv('run') },
    { target: '/var/lib', source: priv('var-lib') },
    { target: '/var/log', source: priv('var-log') },
    { target: '/etc/openvpn/server', source: priv('etc-openvpn-server', 0o755) },
  ];
  const unitRoot = join(base, 'units');
  mkdirSync(join(unitRoot, 'lib/systemd/system'), { recursive: true });
  mkdirSync(join(unitRoot, 'etc/systemd/system'), { recursive: true });
  copyFileSync(existsSync(DEBIAN_UNIT) ? DEBIAN_UNIT : FIXTURE_UNIT, join(unitRoot, 'lib/systemd/system/openvpn-server@.service'));
  const etc = join(base, 'etc-flexscript');
  const m: Machine = {
    base,
    lab,
    etc,
    unitRoot,
    binds,
    port: await lab.allocPort(),
    flexscript: (...args) => inMachine(binds, [process.execPath, FLEXSCRIPT, ...args]),
    start: (unit) => {
      const p = lab.adopt(startUnit({ unit, unitRoot, binds, logPath: join(base, `${unit}.log`) }));
      processes.push(p);
      return p;
    },
    installUnitFile: (from, to) => {
      mkdirSync(join(unitRoot, 'etc/systemd/system', to, '..'), { recursive: true });
      copyFileSync(from, join(unitRoot, 'etc/systemd/system', to));
    },
  };
  // 1. flexscript init, as the README says
  const init = spawnSync(process.execPath, [FLEXSCRIPT, 'init', '--dir', etc, '--mode', mode, '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup'], {
    encoding: 'utf8',
  });
  assert.equal(init.status, 0, init.stderr);
  // 1b. the operator's edit ($EDITOR in the README): office-routes' commented example group
  // replaces its empty list, as the config's comment says; as written it pushes nothing
  const configPath = join(etc, 'flexscript.yaml');
  const yaml = readFileSync(configPath, 'utf8');
  const edited = yaml.replace(/^ {6}groups: \[\]\n((?: {6}# .*\n)+)/m, (_all, example: string) => example.replace(/^( {6})# /gm, '$1'));
  assert.notEqual(edited, yaml, "init's config has office-routes' example to fill in");
  assert.match(edited, /^ {10}routes: \[10\.20\.0\.0\/16\]$/m);
  writeFileSync(configPath, edited);
  // 2. the daemon's user (management mode): systemd-sysusers on a copy of the user database, bound into the machine
  if (existsSync(join(etc, 'sysusers-flexscript.conf'))) {
    const sysroot = join(base, 'sysroot');
    mkdirSync(join(sysroot, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) copyFileSync(`/etc/${f}`, join(sysroot, 'etc', f));
    const users = spawnSync('systemd-sysusers', [`--root=${sysroot}`, join(etc, 'sysusers-flexscript.conf')], { encoding: 'utf8' });
    assert.equal(users.status, 0, users.stderr);
    for (const f of ['passwd', 'group']) binds.push({ target: `/etc/${f}`, source: join(sysroot, 'etc', f) });
  }
  // 3. the boot-time directories: Debian's tmpfiles for OpenVPN, init's for the setup
  for (const file of [DEBIAN_TMPFILES, join(etc, 'tmpfiles-flexscript.conf')].filter(existsSync)) {
    const r = inMachine(binds, ['systemd-tmpfiles', '--create', file]);
    assert.equal(r.status, 0, `${file}: ${r.stderr}`);
  }
  if (!existsSync(DEBIAN_TMPFILES)) mkdirSync(join(base, 'machine/run/openvpn'), { mode: 0o755 });
  // 4. the units: init's daemon unit; OpenVPN's server config at /etc/openvpn/server/vpn.conf
  m.installUnitFile(join(etc, 'flexscriptd.service'), 'flexscriptd.service');
  const net = 10 + (process.pid % 200);
  writeFileSync(
    join(base, 'machine/etc-openvpn-server/vpn.conf'),
    [
      `port ${m.port}`,
      'proto udp',
      'local 127.0.0.1',
      `dev fxsbx${process.pid % 10000}${mode[0]}`,
      'dev-type tun',
      'topology subnet',
      `server 10.${mode === 'hook' ? 91 : 92}.${net}.0 255.255.255.0`,
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
      readFileSync(join(etc, 'openvpn-server.conf.add'), 'utf8'),
    ].join('\n'),
    { mode: 0o644 },
  );
  return m;
}

const checkArgs = (m: Machine) => [
  'check',
  '--config',
  join(m.etc, 'flexscript.yaml'),
  '--openvpn-config',
  '/etc/openvpn/server/vpn.conf',
  '--unit-root',
  m.unitRoot,
];

/** A client connects and gets the route init's office-routes plugin, once filled in, pushes to everyone. */
async function connectsWithRoute(m: Machine, commonName: string): Promise<void> {
  const client = await m.lab.startClient({ commonName, port: m.port });
  await client.waitConnected(60_000);
  assert.match(client.pushReply() ?? '', /route 10\.20\.0\.0 255\.255\.0\.0/, "the daemon's answer: office-routes pushed its route");
  await client.stop();
}

test("hook mode under Debian's openvpn-server@ unit: with init's drop-in a client connects with the daemon's route; without it check names LimitNPROC=10, and OpenVPN cannot fork its hook and exits at the first connect", {
  skip,
  timeout: 240_000,
}, async (t) => {
  const m = await machine(t, 'hook');
  const dropIn = join(m.etc, 'openvpn-server@.service.d/flexscript.conf');
  assert.ok(existsSync(dropIn), "init wrote a drop-in for OpenVPN's unit");

  // without the drop-in: check points at the shipped unit's LimitNPROC line
  const before = m.flexscript(...checkArgs(m));
  assert.equal(before.status, 3, `${before.stdout}\n${before.stderr}`);
  const unitFile = join(m.unitRoot, 'lib/systemd/system/openvpn-server@.service');
  const line =
    readFileSync(unitFile, 'utf8')
      .split('\n')
      .findIndex((l) => l.startsWith('LimitNPROC=')) + 1;
  assert.match(
    String(before.stderr),
    new RegExp(
      `^${unitFile.replace(/[.@]/g, '\\$&')}:${line}: LimitNPROC: 10: in hook mode .*/etc/systemd/system/openvpn-server@\\.service\\.d/flexscript\\.conf`,
      'm',
    ),
  );

  // and the failure it predicts, for real: the daemon runs as nobody, OpenVPN cannot fork its hook
  const daemon = m.start('flexscriptd.service');
  await daemon.waitForLog(/flexscript daemon started/, 60_000);
  let server = m.start('openvpn-server@vpn.service');
  await server.waitForLog(/Initialization Sequence Completed/, 60_000);
  assert.doesNotMatch(server.log(), /Options error/);
  const refused = await m.lab.startClient({ commonName: 'alice', port: m.port });
  // OpenVPN treats the failed fork as fatal: the whole server exits at the first connect
  await waitFor('OpenVPN to exit', () => !server.running, { timeoutMs: 60_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nserver log:\n${server.log().slice(-3000)}`);
  });
  assert.match(server.log(), /openvpn_execve: unable to fork: Resource temporarily unavailable/, 'OpenVPN could not start the hook');
  assert.match(server.log(), /Exiting due to fatal error/);
  await refused.stop();
  assert.doesNotMatch(refused.log(), /Initialization Sequence Completed/, 'alice never got in');
  await server.stop();

  // with init's drop-in installed: check passes, and the client gets the daemon's answer
  m.installUnitFile(dropIn, 'openvpn-server@.service.d/flexscript.conf');
  const after = m.flexscript(...checkArgs(m));
  assert.equal(after.status, 0, `${after.stdout}\n${after.stderr}`);
  server = m.start('openvpn-server@vpn.service');
  await server.waitForLog(/Initialization Sequence Completed/, 60_000);
  await connectsWithRoute(m, 'bob');
  // OpenVPN wrote the status file init set up (version 3), not the unit's --status file
  await waitFor('the status file written', () => readFileSync(join(m.base, 'machine/run/openvpn-flexscript/status.txt'), 'utf8').startsWith('TITLE\t'), {
    timeoutMs: 30_000,
  });
  assert.equal(existsSync(join(m.base, 'machine/run/openvpn-server/status-vpn.log')), false, "the config's status lines win over the unit's --status");
});

test("management mode under Debian's openvpn-server@ unit as shipped: the daemon as flexscript (sysusers.d) attaches and a client gets its route", {
  skip,
  timeout: 180_000,
}, async (t) => {
  const m = await machine(t, 'management');
  assert.equal(existsSync(join(m.etc, 'openvpn-server@.service.d/flexscript.conf')), false, 'management mode needs no drop-in');
  const check = m.flexscript(...checkArgs(m));
  assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
  const server = m.start('openvpn-server@vpn.service');
  await server.waitForLog(/Initialization Sequence Completed|MANAGEMENT: unix domain socket listening/, 60_000);
  const daemon = m.start('flexscriptd.service');
  await daemon.waitForLog(/attached to OpenVPN management interface/, 60_000);
  await server.waitForLog(/Initialization Sequence Completed/, 60_000);
  await connectsWithRoute(m, 'carol');
  // the daemon ran as the user sysusers.d created, not root and not OpenVPN's
  const passwd = readFileSync(join(m.base, 'sysroot/etc/passwd'), 'utf8');
  const uid = /^flexscript:x:(\d+):/m.exec(passwd)?.[1];
  assert.ok(uid, 'systemd-sysusers created flexscript');
  assert.match(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'), new RegExp(`^Uid:\\t${uid}\\t`, 'm'));
});

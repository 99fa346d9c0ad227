/**
 * The Debian package (`npm run package`, packaging/): built from this tree, installed on the
 * machine with dpkg, then used as an operator would: `flexscript --version`, the demo, `init`
 * into /etc/flexscript and `check`. Its removal is refused while an OpenVPN config runs its hook
 * client; remove keeps the configuration and purge leaves nothing behind (the flexscript user
 * stays, as Debian keeps system users; the test deletes it when it made it).
 * It changes the real machine (/usr/lib, /etc, /var), so it runs only where none of it exists
 * yet, and purges the package in t.after, also on failure.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openvpnBinary } from '../src/lab/openvpn-process.ts';

const REPO = new URL('..', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
const PREFIX = '/usr/lib/openvpn-flexscript';
const HOOK = `${PREFIX}/hook/flexscript-hook`;
/** What the package makes or removes on this machine: none of it may exist before the test. */
const OPERATOR_UNIT = '/etc/systemd/system/flexscriptd.service';
const SUDOERS = '/etc/sudoers.d/flexscript';
const TMPFILES = '/etc/tmpfiles.d/flexscript.conf';
const MACHINE_PATHS = [
  PREFIX,
  '/usr/bin/flexscript',
  '/etc/flexscript',
  '/var/lib/flexscript',
  '/var/log/flexscript',
  '/run/flexscript',
  '/run/openvpn-flexscript',
  // what the README has an operator install from init's files; purge removes them
  OPERATOR_UNIT,
  SUDOERS,
  TMPFILES,
  '/etc/sysusers.d/flexscript.conf',
  '/etc/systemd/system/openvpn-server@.service.d/flexscript.conf',
];
const OPENVPN_CONFIG = '/etc/openvpn/server/flexscript-package-test.conf';
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

const run = (cmd: string, args: readonly string[], env: Record<string, string> = {}, timeout = 120_000): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { encoding: 'utf8', env: { ...ENV, ...env }, timeout });
const ok = (r: SpawnSyncReturns<string>, what: string): string => {
  assert.equal(r.status, 0, `${what}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};
const has = (tool: string) => run('sh', ['-c', `command -v ${tool}`]).status === 0;
/** dpkg-query's --showformat for one field: -f=${Field} */
const field = (name: string) => `-f=\${${name}}`;
const installed = () => run('dpkg-query', ['-W', field('db:Status-Abbrev'), 'openvpn-flexscript']).stdout.trim();
const userExists = (name: string) => run('getent', ['passwd', name]).status === 0;

/** The major version of the Node.js the package runs (Debian's nodejs package). */
const systemNodeMajor = () => run('/usr/bin/node', ['-p', "process.versions.node.split('.')[0]"]).stdout?.trim() ?? '';

const skip =
  process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync(openvpnBinary())
      ? 'needs openvpn'
      : !['dpkg', 'dpkg-deb', 'npm'].every(has)
        ? 'needs dpkg, dpkg-deb and npm'
        : systemNodeMajor() !== process.versions.node.split('.')[0]
          ? `the package runs /usr/bin/node (Node.js ${systemNodeMajor() || 'missing'}), this tree's native modules are built for ${process.versions.node}`
          : installed() !== ''
            ? 'openvpn-flexscript is installed on this machine: the test would remove it'
            : MACHINE_PATHS.some((p) => existsSync(p))
              ? `${MACHINE_PATHS.find((p) => existsSync(p))} exists: the package's purge would remove it`
              : false;

/** Every file and folder below dir (not following links). */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : [p];
  });
}

/** A unit or drop-in without its leading comment lines (the package's header differs from init's). */
const body = (text: string) => text.replace(/^(#.*\n)+/, '');

test('the package installs, runs the demo and the operator path, refuses removal while OpenVPN runs its hook, and purges cleanly', {
  skip,
  timeout: 1_200_000,
}, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'fxs-package-'));
  const userBefore = userExists('flexscript');
  const openvpnServerDir = existsSync('/etc/openvpn/server');
  t.after(() => {
    rmSync(OPENVPN_CONFIG, { force: true });
    if (installed() !== '') run('dpkg', ['--purge', 'openvpn-flexscript'], { FLEXSCRIPT_FORCE_REMOVE: '1' });
    for (const f of [OPERATOR_UNIT, SUDOERS, TMPFILES]) rmSync(f, { force: true });
    if (!openvpnServerDir) rmSync('/etc/openvpn/server', { recursive: true, force: true });
    if (!userBefore && userExists('flexscript')) run('userdel', ['flexscript']);
    if (!userBefore) run('groupdel', ['flexscript']);
    rmSync(work, { recursive: true, force: true });
  });

  // build: the script prints the package's path
  const built = ok(
    run('bash', [join(REPO, 'packaging/build-deb.sh'), work], { PATH: process.env.PATH ?? ENV.PATH, HOME: process.env.HOME ?? '/root' }, 600_000),
    'npm run package',
  );
  const deb = built.trim().split('\n').at(-1) ?? '';
  assert.equal(deb, join(work, `openvpn-flexscript_${version}_${run('dpkg', ['--print-architecture']).stdout.trim()}.deb`));
  const info = ok(run('dpkg-deb', ['--field', deb]), 'dpkg-deb --field');
  // better-sqlite3's .node loads in the Node.js major it was built with only; both native modules need the C++ runtime
  const major = Number(process.versions.node.split('.')[0]);
  assert.match(
    info,
    new RegExp(`^Depends: nodejs \\(>= ${major}\\), nodejs \\(<< ${major + 1}\\), openvpn \\(>= 2\\.6\\), libc6, libgcc-s1, libstdc\\+\\+6$`, 'm'),
  );
  assert.ok(major >= 20);

  // install
  ok(run('dpkg', ['-i', deb]), 'dpkg -i');
  assert.equal(installed(), 'ii');
  assert.match(readFileSync('/usr/bin/flexscript', 'utf8'), /^exec \/usr\/bin\/node \/usr\/lib\/openvpn-flexscript\/bin\/flexscript\.js "\$@"$/m);
  assert.equal(statSync('/usr/bin/flexscript').mode & 0o777, 0o755);
  for (const p of [PREFIX, ...walk(PREFIX)]) {
    const s = lstatSync(p);
    assert.ok(s.uid === 0 && s.gid === 0, `${p} is root's`);
    if (!s.isSymbolicLink()) assert.equal(s.mode & 0o022, 0, `${p} is writable by root only`);
  }
  assert.equal(statSync(HOOK).mode & 0o777, 0o755);
  assert.equal(statSync(`${PREFIX}/bin/flexscript-root.js`).mode & 0o777, 0o755);
  assert.ok(!existsSync(`${PREFIX}/node_modules/@biomejs`), 'no development packages');
  assert.ok(existsSync(`${PREFIX}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`));
  const conffiles = run('dpkg-query', ['-W', field('Conffiles'), 'openvpn-flexscript']).stdout;
  assert.match(conffiles, /^ \/etc\/flexscript\/flexscript\.yaml [0-9a-f]{32}$/m);
  assert.equal(statSync('/etc/flexscript/flexscript.yaml').mode & 0o777, 0o644);
  assert.match(readFileSync('/etc/flexscript/flexscript.yaml', 'utf8'), /^plugins: \[\]$/m, 'the example config enables no plugin');
  // the daemon's user and folders; nothing started
  assert.ok(userExists('flexscript'), 'postinst made the flexscript user');
  const uid = Number(run('id', ['-u', 'flexscript']).stdout);
  assert.ok(uid > 0 && uid < 1000, `flexscript is a system user (uid ${uid})`);
  for (const [dir, mode] of [
    ['/run/flexscript', 0o755],
    ['/var/lib/flexscript', 0o750],
    ['/var/log/flexscript', 0o750],
  ] as const) {
    const s = statSync(dir);
    assert.equal(s.uid, uid, `${dir} is the daemon's`);
    assert.equal(s.mode & 0o777, mode, `${dir} mode`);
  }
  assert.equal(run('pgrep', ['-f', `${PREFIX}/bin/flexscript.js run`]).status, 1, 'the package starts no daemon');

  // the units are the ones the installed init writes
  const units = '/usr/lib/systemd/system';
  const unit = readFileSync(`${units}/flexscriptd.service`, 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/node \/usr\/lib\/openvpn-flexscript\/bin\/flexscript\.js run --config \/etc\/flexscript\/flexscript\.yaml$/m);
  const mgmt = join(work, 'init-management');
  ok(
    run('/usr/bin/flexscript', ['init', '--dir', mgmt, '--mode', 'management', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup']),
    'init --mode management',
  );
  assert.equal(body(unit), body(readFileSync(join(mgmt, 'flexscriptd.service'), 'utf8').replaceAll(mgmt, '/etc/flexscript')));
  assert.equal(body(readFileSync('/usr/lib/sysusers.d/flexscript.conf', 'utf8')), body(readFileSync(join(mgmt, 'sysusers-flexscript.conf'), 'utf8')));
  const hook = join(work, 'init-hook');
  ok(run('/usr/bin/flexscript', ['init', '--dir', hook, '--mode', 'hook', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup']), 'init --mode hook');
  assert.equal(
    body(readFileSync(`${units}/openvpn-server@.service.d/flexscript.conf`, 'utf8')),
    body(readFileSync(join(hook, 'openvpn-server@.service.d/flexscript.conf'), 'utf8')),
  );
  assert.match(readFileSync('/usr/lib/tmpfiles.d/flexscript.conf', 'utf8'), /^d \/var\/lib\/flexscript 0750 flexscript flexscript -$/m);
  if (has('systemd-analyze'))
    ok(run('systemd-analyze', ['verify', '--man=no', `${units}/flexscriptd.service`], { SYSTEMD_LOG_LEVEL: 'err' }), 'systemd-analyze verify');

  // the installed command, from its own node_modules
  assert.equal(ok(run('flexscript', ['--version']), 'flexscript --version').trim(), version);
  ok(run('flexscript', ['check']), 'check of the example config');
  const demo = ok(run('flexscript', ['demo', '--clients', '3', '--duration', '1'], {}, 300_000), 'flexscript demo');
  assert.match(demo, /DENIED {6}"lost-laptop-17" by plugin deny-list/);
  assert.match(demo, /2 of 3 clients connected/);

  // the operator path of the README's "Install from the package"
  ok(
    run('flexscript', ['init', '--dir', '/etc/flexscript', '--mode', 'management', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup', '--force']),
    'init into /etc/flexscript',
  );
  // the plugins copied to /etc/flexscript/plugins are type-checked against the installed package's types
  assert.match(ok(run('flexscript', ['check']), 'check'), /OK \(4 plugin\(s\): deny-list, office-routes, session-log, accounting\)/);
  assert.match(ok(run('flexscript', ['openvpn-config']), 'openvpn-config'), /^management-client-auth$/m);
  // an operator installs init's files as the README says; purge takes them away again
  writeFileSync(OPERATOR_UNIT, readFileSync('/etc/flexscript/flexscriptd.service'));
  writeFileSync(SUDOERS, readFileSync('/etc/flexscript/sudoers-flexscript'), { mode: 0o440 });
  assert.match(readFileSync(SUDOERS, 'utf8'), /^flexscript ALL=\(root\) NOPASSWD: \/usr\/lib\/openvpn-flexscript\/bin\/flexscript-root\.js --config /m);
  writeFileSync(TMPFILES, readFileSync(join(hook, 'tmpfiles-flexscript.conf')));

  // an OpenVPN config that runs the package's hook client: the removal is refused
  const hookLines = readFileSync(join(hook, 'openvpn-server.conf.add'), 'utf8');
  assert.ok(hookLines.includes(`"${HOOK} `), hookLines);
  mkdirSync('/etc/openvpn/server', { recursive: true });
  writeFileSync(OPENVPN_CONFIG, `dev tun\n${hookLines}`);
  const refused = run('dpkg', ['--remove', 'openvpn-flexscript']);
  assert.notEqual(refused.status, 0, 'dpkg --remove is refused');
  assert.match(refused.stderr, new RegExp(`not removed: these OpenVPN configs run its hook client[^]*${OPENVPN_CONFIG}`));
  // still installed ("ri": dpkg keeps the operator's wish to remove it for the next attempt)
  assert.match(installed(), /^[ir]i$/);
  assert.ok(existsSync(HOOK), 'the hook client is still there');

  // OpenVPN's lines first, then remove: the configuration and the data stay
  rmSync(OPENVPN_CONFIG);
  ok(run('dpkg', ['--remove', 'openvpn-flexscript']), 'dpkg --remove');
  assert.equal(installed(), 'rc');
  for (const gone of [PREFIX, '/usr/bin/flexscript', `${units}/flexscriptd.service`, '/usr/lib/sysusers.d/flexscript.conf'])
    assert.ok(!existsSync(gone), `${gone} removed`);
  for (const kept of ['/etc/flexscript/flexscript.yaml', '/etc/flexscript/plugins/deny-list.ts', '/var/lib/flexscript'])
    assert.ok(existsSync(kept), `${kept} kept`);

  // purge: nothing left but the user
  ok(run('dpkg', ['--purge', 'openvpn-flexscript']), 'dpkg --purge');
  assert.equal(installed(), '');
  for (const gone of [...MACHINE_PATHS, `${units}/openvpn-server@.service.d/flexscript.conf`, '/usr/lib/tmpfiles.d/flexscript.conf'])
    assert.ok(!existsSync(gone), `${gone} removed`);
  assert.ok(userExists('flexscript'), 'the flexscript user is kept (Debian keeps system users on purge)');
  assert.equal(run('grep', ['-rlsF', HOOK, '/etc/openvpn']).stdout, '', 'no OpenVPN config names the removed hook client');
});

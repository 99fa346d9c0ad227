/**
 * `flexscript init` writes a setup that passes `flexscript check`, and never overwrites.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import type { ClientConnectEvent } from '../src/events/event-map.ts';
import { parseEvent } from '../src/events/parse-event.ts';
import { parseConfig } from '../src/config/load-config.ts';
import { offlineServices } from '../src/daemon/services.ts';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { createLogger } from '../src/logger.ts';
import { Pipeline } from '../src/pipeline/pipeline.ts';
import { loadPlugins } from '../src/plugins/load-plugins.ts';
import { parseRootConfig } from '../src/root/root-config.ts';
import { SessionTable } from '../src/sessions/session-table.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

for (const mode of ['hook', 'management'] as const) {
  test(`init writes a ${mode}-mode setup that passes check, and refuses to overwrite without --force`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const init = flexscript('init', '--dir', dir, '--mode', mode, '--openvpn-user', 'openvpn', '--openvpn-group', 'openvpn');
    assert.equal(init.status, 0, init.stderr);
    const check = flexscript('check', '--config', join(dir, 'flexscript.yaml'));
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /OK \(4 plugin\(s\): deny-list, office-routes, session-log, accounting\)/);
    // each directory the config writes into is one the unit creates (in both modes)
    const config = readFileSync(join(dir, 'flexscript.yaml'), 'utf8');
    const unitText = readFileSync(join(dir, 'flexscriptd.service'), 'utf8');
    const created = {
      '/run/flexscript/': 'RuntimeDirectory=flexscript',
      '/var/lib/flexscript/': 'StateDirectory=flexscript',
      '/var/log/flexscript/': 'LogsDirectory=flexscript',
    };
    for (const [prefix, line] of Object.entries(created)) {
      assert.ok(config.includes(prefix), `the config uses ${prefix}`);
      assert.match(unitText, new RegExp(`^${line}( |$)`, 'm'));
    }
    const lines = readFileSync(join(dir, 'openvpn-server.conf.add'), 'utf8');
    // hook mode: the daemon is OpenVPN's user; management mode: its own (flexscript)
    const daemonUser = mode === 'hook' ? 'openvpn' : 'flexscript';
    assert.match(
      lines,
      mode === 'hook'
        ? /^client-connect ".*flexscript-hook \/run\/flexscript\/vpn defer deny 5"$/m
        : /^management \/run\/openvpn\/vpn\.sock unix\nmanagement-client-auth\nmanagement-client-user flexscript$/m,
    );
    const unit = readFileSync(join(dir, 'flexscriptd.service'), 'utf8');
    assert.match(unit, new RegExp(`^User=${daemonUser}$`, 'm'));
    assert.match(unit, /^ExecStart=.*flexscript\.js run --config .*flexscript\.yaml$/m);
    assert.match(readFileSync(join(dir, 'plugins/office-routes.ts'), 'utf8'), /from 'openvpn-flexscript'/);
    // the drop-in allows exactly the root stage with the root config, for the daemon's user only
    const sudoers = readFileSync(join(dir, 'sudoers-flexscript'), 'utf8');
    assert.match(
      sudoers,
      new RegExp(`^${daemonUser} ALL=\\(root\\) NOPASSWD: \\/\\S+\\/bin\\/flexscript-root\\.js --config \\/etc\\/flexscript\\/root\\.yaml$`, 'm'),
    );
    if (mode === 'management')
      assert.doesNotMatch(sudoers, /^openvpn ALL=\(root\) NOPASSWD: \/\S+\/bin\/flexscript-root\.js --config \/etc\/flexscript\/root\.yaml$/m);
    assert.equal(sudoers.split('\n').filter((l) => l && !l.startsWith('#')).length, 1, 'one rule, nothing broader');
    assert.equal(spawnSync('visudo', ['-cf', join(dir, 'sudoers-flexscript')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).status, 0);
    assert.equal(statSync(join(dir, 'sudoers-flexscript')).mode & 0o777, 0o440);
    // the root config it writes is valid for the root stage
    assert.doesNotThrow(() => parseRootConfig(readFileSync(join(dir, 'root.yaml'), 'utf8'), join(dir, 'root.yaml')));

    writeFileSync(join(dir, 'flexscript.yaml'), 'instance: mine\n');
    const again = flexscript('init', '--dir', dir, '--mode', mode);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /these files exist \(nothing was written; --force overwrites them\)/);
    assert.equal(readFileSync(join(dir, 'flexscript.yaml'), 'utf8'), 'instance: mine\n');
    assert.equal(flexscript('init', '--dir', dir, '--mode', mode, '--force').status, 0);
    assert.notEqual(readFileSync(join(dir, 'flexscript.yaml'), 'utf8'), 'instance: mine\n');
  });
}

/** What a client gets from the plugins of this config: its verdict and config lines (the store left out: it refuses every call here). */
async function answerFor(yaml: string, file: string, commonName: string) {
  const loaded = parseConfig(yaml, file);
  const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const plugins = (await loadPlugins(loaded, log, offlineServices(loaded.config))).filter((p) => p.name !== 'accounting');
  assert.deepEqual(
    plugins.map((p) => p.name),
    ['deny-list', 'office-routes', 'session-log'],
  );
  const event = parseEvent({
    name: 'client-connect',
    instance: 'vpn',
    source: 'management',
    env: { common_name: commonName, trusted_ip: '192.0.2.1', trusted_port: '1194' },
  }) as ClientConnectEvent;
  const session = new SessionTable().create({ via: 'management', instance: 'vpn', cid: 0 }, { instance: 'vpn', commonName });
  return new Pipeline(plugins, log).run(event, session);
}

for (const mode of ['hook', 'management'] as const) {
  test(`init's ${mode}-mode config changes nothing a client gets until the operator fills in an example`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-optin-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    assert.equal(flexscript('init', '--dir', dir, '--mode', mode).status, 0);
    const file = join(dir, 'flexscript.yaml');
    const yaml = readFileSync(file, 'utf8');
    const as = await answerFor(yaml, file, 'alice');
    assert.equal(as.verdict, 'accept');
    assert.deepEqual(as.config, [], 'no route, no DNS, nothing pushed');
    // the operator opts in as the comment says: groups: [] replaced by the commented lines
    const lines = yaml.split('\n');
    const at = lines.indexOf('      groups: []');
    assert.ok(at > 0, 'office-routes starts with no group');
    let i = at + 1;
    while (lines[i]?.startsWith('      # ')) {
      lines[i] = lines[i]!.replace('      # ', '      ');
      i++;
    }
    lines.splice(at, 1);
    const optedIn = await answerFor(lines.join('\n'), file, 'alice');
    assert.equal(optedIn.verdict, 'accept');
    assert.deepEqual(optedIn.config, ['push "route 10.20.0.0 255.255.0.0"'], 'the example, once filled in, pushes its route');
  });
}

/** Lines systemd-analyze prints about a unit that are not problems of the unit's syntax or settings. */
const HARMLESS = /Special user \S+ configured, this is not safe!/;

for (const mode of ['hook', 'management'] as const) {
  test(`init's ${mode}-mode unit: private /tmp, umask 0027, and systemd-analyze verify finds nothing`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-unit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const init = flexscript('init', '--dir', dir, '--mode', mode, '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup');
    assert.equal(init.status, 0, init.stderr);
    const unitPath = join(dir, 'flexscriptd.service');
    const unit = readFileSync(unitPath, 'utf8');
    assert.match(unit, /^PrivateTmp=yes$/m);
    assert.doesNotMatch(unit, /^PrivateTmp=(no|false)$/m);
    assert.match(unit, /^UMask=0027$/m);
    assert.match(unit, /^ProtectSystem=strict$/m);
    if (mode === 'hook') {
      // OpenVPN's tmp-dir lives in the runtime directory the unit creates (and makes writable)
      assert.match(unit, /^RuntimeDirectory=flexscript flexscript\/openvpn-tmp$/m);
    }
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
    if (which.status !== 0) {
      t.diagnostic('systemd-analyze is not installed: the unit was not verified by systemd');
      return;
    }
    // verify exits 0 even for settings it ignores; every line it prints is a finding
    const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    const findings = `${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.trim() && !HARMLESS.test(l));
    assert.equal(verify.status, 0, verify.stderr);
    assert.deepEqual(findings, [], 'systemd-analyze verify has no findings');
  });
}

test("init's hook-mode setup keeps live clients across a daemon restart: status file, status-version 3, tmp-dir, tmpfiles", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-init-status-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(flexscript('init', '--dir', dir, '--mode', 'hook', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup').status, 0);
  const config = readFileSync(join(dir, 'flexscript.yaml'), 'utf8');
  assert.match(config, /^ {2}status-file: \/run\/openvpn-flexscript\/status\.txt$/m);
  assert.match(config, /^ {2}tmp-dir: \/run\/flexscript\/openvpn-tmp$/m);
  const lines = readFileSync(join(dir, 'openvpn-server.conf.add'), 'utf8');
  assert.match(lines, /^status "\/run\/openvpn-flexscript\/status\.txt" \d+$/m);
  assert.match(lines, /^status-version 3$/m);
  assert.match(lines, /^tmp-dir "\/run\/flexscript\/openvpn-tmp"$/m);
  // Debian's unit gives --status on the command line; the generated comment says which wins
  assert.match(lines, /^# Debian's openvpn-server@\.service passes --status/m);
  // the same lines as openvpn-config prints for this config
  const printed = flexscript('openvpn-config', '--config', join(dir, 'flexscript.yaml'), '--mode', 'hook');
  assert.equal(printed.status, 0, printed.stderr);
  for (const l of ['status "/run/openvpn-flexscript/status.txt" 1', 'status-version 3', 'tmp-dir "/run/flexscript/openvpn-tmp"'])
    assert.ok(printed.stdout.includes(l), l);
  // the status file is root's in a root-only directory (OpenVPN opens it as root), readable by the group
  const tmpfiles = readFileSync(join(dir, 'tmpfiles-flexscript.conf'), 'utf8');
  assert.match(tmpfiles, /^d \/run\/openvpn-flexscript 0750 root nogroup -$/m);
  assert.match(tmpfiles, /^f \/run\/openvpn-flexscript\/status\.txt 0640 root nogroup -$/m);
  assert.match(tmpfiles, /^d \/run\/flexscript\/openvpn-tmp 0770 nobody nogroup -$/m);
  // the management-mode setup has none of it: status 3 over the management interface
  const mgmt = mkdtempSync(join(tmpdir(), 'fxs-init-status-'));
  t.after(() => rmSync(mgmt, { recursive: true, force: true }));
  assert.equal(flexscript('init', '--dir', mgmt, '--mode', 'management', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup').status, 0);
  assert.doesNotMatch(readFileSync(join(mgmt, 'flexscript.yaml'), 'utf8'), /status-file/);
});

test("init's drop-in for OpenVPN's unit (hook mode) and sysusers.d file: LimitNPROC raised, systemd-analyze and systemd-sysusers accept them", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-init-units-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(flexscript('init', '--dir', join(dir, 'hook'), '--mode', 'hook', '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup').status, 0);
  assert.equal(flexscript('init', '--dir', join(dir, 'mgmt'), '--mode', 'management').status, 0);
  const dropIn = readFileSync(join(dir, 'hook/openvpn-server@.service.d/flexscript.conf'), 'utf8');
  assert.match(dropIn, /^\[Service\]$/m);
  assert.match(dropIn, /^LimitNPROC=(\d+)$/m);
  assert.ok(Number(/^LimitNPROC=(\d+)$/m.exec(dropIn)![1]) >= 64, "room for the daemon's threads, exec scripts and hooks");
  assert.equal(existsSync(join(dir, 'mgmt/openvpn-server@.service.d')), false, 'management mode starts no hook');
  // nobody exists everywhere; management mode's flexscript user does not
  assert.equal(existsSync(join(dir, 'hook/sysusers-flexscript.conf')), false);
  const users = readFileSync(join(dir, 'mgmt/sysusers-flexscript.conf'), 'utf8');
  assert.match(users, /^u flexscript - "openvpn-flexscript daemon" \/ -$/m);
  const sysroot = join(dir, 'sysroot');
  mkdirSync(join(sysroot, 'etc'), { recursive: true });
  for (const f of ['passwd', 'group']) copyFileSync(`/etc/${f}`, join(sysroot, 'etc', f));
  const created = spawnSync('systemd-sysusers', [`--root=${sysroot}`, join(dir, 'mgmt/sysusers-flexscript.conf')], { encoding: 'utf8' });
  if (created.error) t.diagnostic('systemd-sysusers is not installed');
  else {
    assert.equal(created.status, 0, created.stderr);
    assert.match(readFileSync(join(sysroot, 'etc/passwd'), 'utf8'), /^flexscript:x:\d+:\d+:/m);
  }
  // Debian's unit with the drop-in applied, as systemd reads it
  if (!existsSync('/lib/systemd/system/openvpn-server@.service')) return t.diagnostic('openvpn-server@.service is not installed');
  const units = join(dir, 'units');
  mkdirSync(join(units, 'openvpn-server@.service.d'), { recursive: true });
  copyFileSync('/lib/systemd/system/openvpn-server@.service', join(units, 'openvpn-server@.service'));
  copyFileSync(join(dir, 'hook/openvpn-server@.service.d/flexscript.conf'), join(units, 'openvpn-server@.service.d/flexscript.conf'));
  const verify = spawnSync('systemd-analyze', ['verify', join(units, 'openvpn-server@vpn.service')], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${units}:` },
  });
  if (verify.error) return t.diagnostic('systemd-analyze is not installed');
  const findings = `${verify.stdout}${verify.stderr}`
    .split('\n')
    .filter((l) => l.trim() && !HARMLESS.test(l) && !/openvpn-server@vpn\.service: Command \/usr\/sbin\/openvpn/.test(l));
  assert.equal(verify.status, 0, verify.stderr);
  assert.deepEqual(findings, []);
});

/** The last `NAME value` line of OpenVPN's config lines. */
const lastLine = (text: string, name: string) => [...text.matchAll(new RegExp(`^${name} (\\S+)$`, 'gm'))].at(-1)?.[1];

for (const mode of ['hook', 'management'] as const) {
  test(`init's ${mode}-mode files all name the same users: OpenVPN's user and group lines, the unit, sudoers, sysusers.d${mode === 'hook' ? ', tmpfiles.d, hook.group' : ', management-client-user'}`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-users-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // names unlike any default, so a mix-up shows
    const openvpn = { user: 'ovpn', group: 'ovpngrp' };
    const daemon = mode === 'hook' ? openvpn : { user: 'fxd', group: 'fxdgrp' };
    const args = ['init', '--dir', dir, '--mode', mode, '--openvpn-user', openvpn.user, '--openvpn-group', openvpn.group];
    if (mode === 'management') args.push('--daemon-user', daemon.user, '--daemon-group', daemon.group);
    const init = flexscript(...args);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(init.stderr, '');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');

    // OpenVPN drops to its account: the lines it is told to add name it (commented: they would replace the config's own)
    const lines = read('openvpn-server.conf.add');
    assert.match(lines, new RegExp(`^# {3}user ${openvpn.user}\n# {3}group ${openvpn.group}$`, 'm'));
    assert.equal(lastLine(lines, 'user'), undefined, "no user line that would replace the config's own");
    // the daemon runs as its account; systemd makes its folders that account's
    const unit = read('flexscriptd.service');
    assert.match(unit, new RegExp(`^User=${daemon.user}\nGroup=${daemon.group}$`, 'm'));
    // sudo lets the daemon's user, and no other, start the root stage
    assert.deepEqual(
      read('sudoers-flexscript')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(' ')[0]),
      [daemon.user],
    );
    // sysusers.d creates the daemon's account
    assert.deepEqual(
      read('sysusers-flexscript.conf')
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
      [`g ${daemon.group} -`, `u ${daemon.user} -:${daemon.group} "openvpn-flexscript daemon" / -`],
    );
    const config = parseConfig(read('flexscript.yaml'), join(dir, 'flexscript.yaml')).config;
    if (mode === 'hook') {
      // the spool is shared with OpenVPN's group; the runtime folder is the daemon's, tmp-dir OpenVPN's, the status file root's read by OpenVPN's group
      assert.equal(config.hook?.group, openvpn.group);
      const tmpfiles = read('tmpfiles-flexscript.conf');
      assert.match(tmpfiles, new RegExp(`^d /run/flexscript 0770 ${daemon.user} ${daemon.group} -$`, 'm'));
      assert.match(tmpfiles, new RegExp(`^d /run/flexscript/openvpn-tmp 0770 ${openvpn.user} ${openvpn.group} -$`, 'm'));
      assert.match(tmpfiles, new RegExp(`^d /run/openvpn-flexscript 0750 root ${openvpn.group} -$`, 'm'));
      assert.match(tmpfiles, new RegExp(`^f /run/openvpn-flexscript/status\\.txt 0640 root ${openvpn.group} -$`, 'm'));
    } else {
      // OpenVPN lets only the daemon's user on its management socket
      assert.equal(lastLine(lines, 'management-client-user'), daemon.user);
      assert.equal(config.hook, undefined);
    }
    // and init says so
    assert.match(init.stdout, new RegExp(`^ {2}OpenVPN drops to ${openvpn.user}:${openvpn.group} \\(its user and group lines\\)$`, 'm'));
    assert.match(
      init.stdout,
      new RegExp(
        `^ {2}the daemon runs as ${daemon.user}:${daemon.group}, ${mode === 'hook' ? "OpenVPN's user \\(hook mode\\)" : 'its own user \\(management mode\\)'}`,
        'm',
      ),
    );
  });
}

test('init refuses users that cannot work together (exit 2, nothing written) and keeps --user/--group as the old names', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-init-refuse-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const refused = [
    [['--mode', 'hook', '--openvpn-user', 'openvpn', '--daemon-user', 'flexscript'], /in hook mode the daemon runs as OpenVPN's user \(openvpn\)/],
    [['--mode', 'hook', '--daemon-group', 'flexscript'], /in hook mode the daemon runs in OpenVPN's group \(nogroup\)/],
    [['--user', 'a', '--openvpn-user', 'b'], /--user is the old name of --openvpn-user: give one/],
    [['--daemon-user', 'root'], /--daemon-user root: the daemon runs unprivileged/],
    [['--openvpn-user', 'nobody ALL=(ALL) ALL'], /not a plain user or group name/],
  ] as const;
  for (const [args, message] of refused) {
    const r = flexscript('init', '--dir', join(dir, 'setup'), ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^flexscript init: .*${message.source}`));
    assert.equal(existsSync(join(dir, 'setup')), false, 'nothing written');
  }
  // the old names still work, as the same flags
  const old = flexscript('init', '--dir', join(dir, 'old'), '--mode', 'hook', '--user', 'openvpn', '--group', 'vpn');
  assert.equal(old.status, 0, old.stderr);
  assert.match(readFileSync(join(dir, 'old/flexscriptd.service'), 'utf8'), /^User=openvpn\nGroup=vpn$/m);
  // management mode sharing OpenVPN's user works, and says what it gives up
  const shared = flexscript('init', '--dir', join(dir, 'shared'), '--daemon-user', 'nobody');
  assert.equal(shared.status, 0, shared.stderr);
  assert.match(shared.stderr, /^flexscript init: warning: the daemon runs as OpenVPN's user \(nobody\)/m);
  assert.match(readFileSync(join(dir, 'shared/flexscriptd.service'), 'utf8'), /^User=nobody\nGroup=nogroup$/m);
});

for (const mode of ['hook', 'management'] as const) {
  test(`check agrees with init's ${mode}-mode users: installed as written it finds no problem; a unit running the daemon as another user is named`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-init-check-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const setup = join(dir, 'etc');
    assert.equal(flexscript('init', '--dir', setup, '--mode', mode, '--openvpn-user', 'nobody', '--openvpn-group', 'nogroup').status, 0);
    // the units as the operator installs them, below a unit root
    const units = join(dir, 'units');
    const system = join(units, 'etc/systemd/system');
    mkdirSync(system, { recursive: true });
    copyFileSync(join(setup, 'flexscriptd.service'), join(system, 'flexscriptd.service'));
    const openvpnConfig = join(dir, 'vpn.conf');
    // the operator's config with the user and group lines init names, and init's lines
    const added = readFileSync(join(setup, 'openvpn-server.conf.add'), 'utf8');
    const accountLines = [...added.matchAll(/^# {3}((?:user|group) \S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(accountLines, ['user nobody', 'group nogroup']);
    writeFileSync(openvpnConfig, `dev tun\npersist-key\npersist-tun\n${accountLines.join('\n')}\n${added}`);
    const check = () =>
      flexscript('check', '--config', join(setup, 'flexscript.yaml'), '--openvpn-config', openvpnConfig, '--daemon-unit', 'flexscriptd', '--unit-root', units);
    const ok = check();
    assert.equal(ok.status, 0, ok.stderr);
    // the same unit running the daemon as someone else
    const other = mode === 'hook' ? 'daemon' : 'www-data';
    writeFileSync(join(system, 'flexscriptd.service'), readFileSync(join(setup, 'flexscriptd.service'), 'utf8').replace(/^User=.*$/m, `User=${other}`));
    const drifted = check();
    assert.equal(drifted.status, 3, drifted.stderr);
    assert.match(
      drifted.stderr,
      mode === 'hook'
        ? new RegExp(`flexscriptd\\.service:\\d+: User: ${other}, but OpenVPN runs its hooks as nobody`)
        : new RegExp(`flexscriptd\\.service:\\d+: User: ${other}, but OpenVPN's management-client-user is flexscript`),
    );
  });
}

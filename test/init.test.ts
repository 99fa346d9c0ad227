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
    const init = flexscript('init', '--dir', dir, '--mode', mode, '--user', 'openvpn', '--group', 'openvpn');
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
    const init = flexscript('init', '--dir', dir, '--mode', mode, '--user', 'nobody', '--group', 'nogroup');
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
  assert.equal(flexscript('init', '--dir', dir, '--mode', 'hook', '--user', 'nobody', '--group', 'nogroup').status, 0);
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
  assert.equal(flexscript('init', '--dir', mgmt, '--mode', 'management', '--user', 'nobody', '--group', 'nogroup').status, 0);
  assert.doesNotMatch(readFileSync(join(mgmt, 'flexscript.yaml'), 'utf8'), /status-file/);
});

test("init's drop-in for OpenVPN's unit (hook mode) and sysusers.d file: LimitNPROC raised, systemd-analyze and systemd-sysusers accept them", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-init-units-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(flexscript('init', '--dir', join(dir, 'hook'), '--mode', 'hook', '--user', 'nobody', '--group', 'nogroup').status, 0);
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

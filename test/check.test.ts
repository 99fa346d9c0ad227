/**
 * `flexscript check` on a clean setup (passes) and on setups broken on purpose, one kind of
 * problem at a time: config, OpenVPN's lines for each mode, sockets and the runtime directory,
 * the root config and the sudoers drop-in. Each problem must be found, as one line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { checkUnits } from '../src/cli/check-units.ts';
import { parseConfig } from '../src/config/load-config.ts';
import { parseOpenVpnConfig } from '../src/util/openvpn-directives.ts';
import { FLEXSCRIPT, ownedDir } from '../src/lab/daemon-process.ts';
import { rootCommand, sudoersDropIn } from '../src/root/sudoers.ts';
import { NO_UNITS, runChecks } from './support/no-units.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

const ROOT_YAML = [
  'table: fxscheck',
  'vpn-interfaces: [tun0]',
  'vpn-networks: [10.8.0.0/24]',
  'groups:',
  '  staff:',
  '    allow:',
  '      - { to: 10.20.0.0/16, protocol: tcp, ports: [22] }',
  '',
].join('\n');

interface Setup {
  readonly dir: string;
  readonly config: string;
  readonly openvpn: string;
  readonly rootYaml: string;
  readonly sudoers: string;
  readonly runDir: string;
  readonly controlSocket: string;
  /** OpenVPN's status file (hook.status-file): root's, group nogroup, mode 0640, in a root-only folder. */
  readonly statusFile: string;
  /** Rewrites the flexscript config (lines replace the defaults). */
  writeConfig(lines: string[]): void;
  check(): ReturnType<typeof runChecks>;
}

/** A complete, correct hook-mode setup with a root stage, in a fresh root-owned directory. */
function setup(t: TestContext): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-check-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = ownedDir(join(dir, 'run'));
  const sockDir = ownedDir(join(dir, 'sock'));
  const rootYaml = join(dir, 'root.yaml');
  writeFileSync(rootYaml, ROOT_YAML, { mode: 0o644 });
  const sudoers = join(dir, 'sudoers-flexscript');
  writeFileSync(sudoers, sudoersDropIn({ user: 'nobody', command: rootCommand(rootYaml) }), { mode: 0o440 });
  const config = join(dir, 'flexscript.yaml');
  const controlSocket = join(sockDir, 'control.sock');
  // the firewall keeps kernel state: a restarted daemon needs OpenVPN's status file
  mkdirSync(join(dir, 'openvpn-status'), { mode: 0o750 });
  chownSync(join(dir, 'openvpn-status'), 0, 65534);
  const statusFile = join(dir, 'openvpn-status', 'status.txt');
  writeFileSync(statusFile, '', { mode: 0o640 });
  chownSync(statusFile, 0, 65534);
  const lines = [
    'instance: office',
    'hook:',
    `  dir: ${runDir}`,
    '  group: nogroup',
    `  status-file: ${statusFile}`,
    'control:',
    `  socket: ${controlSocket}`,
    '  group: nogroup',
    'root:',
    `  config: ${rootYaml}`,
    'plugins:',
    '  - use: firewall',
    '    options:',
    '      groups:',
    '        staff: { common-names: [alice] }',
  ];
  const writeConfig = (l: string[]) => writeFileSync(config, `${l.join('\n')}\n`, { mode: 0o644 });
  writeConfig(lines);
  const printed = flexscript('openvpn-config', '--config', config, '--mode', 'hook');
  assert.equal(printed.status, 0, printed.stderr);
  const openvpn = join(dir, 'server.conf');
  writeFileSync(openvpn, ['port 1194', 'dev tun', '<ca>', 'user root', '</ca>', 'user nobody', 'group nogroup', printed.stdout].join('\n'));
  return {
    dir,
    config,
    openvpn,
    rootYaml,
    sudoers,
    runDir,
    controlSocket,
    statusFile,
    writeConfig,
    check: () => runChecks(config, { openvpnConfig: openvpn, sudoers }),
  };
}

/** Asserts that some problem line matches each pattern. */
function found(problems: readonly string[], ...patterns: RegExp[]): void {
  for (const re of patterns)
    assert.ok(
      problems.some((p) => re.test(p)),
      `no problem matches ${re}:\n${problems.join('\n')}`,
    );
}

test('a clean setup passes: config, plugins, sockets, OpenVPN lines, root config and sudoers', async (t) => {
  const s = setup(t);
  const result = await s.check();
  assert.deepEqual(result.problems, []);
  assert.deepEqual(result.plugins, ['firewall']);
  const cli = flexscript('check', '--config', s.config, '--openvpn-config', s.openvpn, '--sudoers', s.sudoers, '--unit-root', NO_UNITS);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /OK \(1 plugin\(s\): firewall\); checked: config, plugins, sockets, OpenVPN config, root stage, sudoers\n$/);
});

test('the OpenVPN config parser reads quotes, escapes, comments and skips inline blocks', () => {
  const d = parseOpenVpnConfig(
    [
      '# comment',
      'client-connect "/x/flexscript-hook /run/a\\"b defer deny 5"',
      "up '/bin/x y' ; trailing",
      '<key>',
      'user root',
      '</key>',
      '--user nobody',
    ].join('\n'),
  );
  assert.deepEqual(d, [
    { name: 'client-connect', args: ['/x/flexscript-hook /run/a"b defer deny 5'], line: 2 },
    { name: 'up', args: ['/bin/x y'], line: 3 },
    { name: 'user', args: ['nobody'], line: 7 },
  ]);
});

test('hook mode: missing, foreign and blocking hook lines, script-security, user and group are each reported', async (t) => {
  const s = setup(t);
  writeFileSync(
    s.openvpn,
    [
      'script-security 1',
      'group users',
      `client-connect "/usr/local/bin/flexscript-hook ${s.runDir} notify deny 5"`,
      `client-disconnect "/etc/openvpn/old-disconnect.sh"`,
      `up "/usr/local/bin/flexscript-hook /elsewhere notify allow 5"`,
    ].join('\n'),
  );
  const { problems, warnings } = await runChecks(s.config, { openvpnConfig: s.openvpn, sudoers: s.sudoers });
  found(
    problems,
    /server\.conf:1: user: missing: OpenVPN keeps running as root/,
    /server\.conf:1: script-security: 1 does not let OpenVPN run the hook client; set `script-security 2`/,
    /server\.conf:2: group: OpenVPN's group is users but hook\.group is nogroup/,
    /server\.conf:3: client-connect: runs in notify mode: OpenVPN's event loop .* waits for the plugins; use deferral: client-connect ".*flexscript-hook .* defer deny 5"/,
    /server\.conf:3: client-connect: \/usr\/local\/bin\/flexscript-hook is not an executable file/,
    /server\.conf:4: client-disconnect: runs \/etc\/openvpn\/old-disconnect\.sh, not the hook client/,
    /server\.conf:1: learn-address: missing: a plugin handles learn-address but OpenVPN never reports it; add: learn-address "/,
    /server\.conf:5: up: hands events to \/elsewhere but hook\.dir is /,
  );
  assert.ok(
    warnings.some((w) => /server\.conf:5: up: no plugin handles up/.test(w)),
    warnings.join('\n'),
  );
  const cli = flexscript('check', '--config', s.config, '--openvpn-config', s.openvpn, '--sudoers', s.sudoers, '--unit-root', NO_UNITS);
  assert.equal(cli.status, 3, 'exit 3: check found problems');
  assert.equal(cli.stderr.trim().split('\n').length, problems.length, 'one line per problem');
});

test('hook mode with learn-address: connect: a learn-address line is reported (addresses would come twice), none is fine', async (t) => {
  const s = setup(t);
  const lines = readFileSync(s.config, 'utf8').trimEnd().split('\n');
  s.writeConfig(lines.flatMap((l) => (l === `  dir: ${s.runDir}` ? [l, '  learn-address: connect'] : [l])));
  const { problems } = await s.check();
  found(problems, /server\.conf:\d+: learn-address: hook\.learn-address is connect: the daemon reports addresses .* remove the line/);
  writeFileSync(
    s.openvpn,
    readFileSync(s.openvpn, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('learn-address '))
      .join('\n'),
  );
  assert.deepEqual((await s.check()).problems, []);
});

test("hook mode: OpenVPN's user must be the daemon's (the runtime directory's owner)", async (t) => {
  const s = setup(t);
  chownSync(s.runDir, 0, 65534);
  const { problems } = await s.check();
  found(problems, /server\.conf:\d+: user: OpenVPN runs hooks as nobody but .*\/run belongs to root; in hook mode run the daemon as OpenVPN's user/);
  // and the sudoers rule, written for nobody, no longer matches the daemon's user
  found(problems, /sudoers-flexscript:3: allows nobody, but the daemon runs as root/);
});

test('management mode: socket, management-client-auth and management-client-user are checked', async (t) => {
  const s = setup(t);
  s.writeConfig([
    'management:',
    '  instances:',
    '    - { name: a, socket: /run/openvpn/a.sock }',
    '    - { name: b, host: 127.0.0.1, port: 7505, password-file: /etc/openvpn/b.pw }',
  ]);
  writeFileSync(s.openvpn, ['user nobody', 'group nogroup', 'management /run/openvpn/other.sock unix'].join('\n'));
  let { problems } = await runChecks(s.config, { openvpnConfig: s.openvpn });
  found(
    problems,
    /server\.conf:3: management: \/run\/openvpn\/other\.sock unix is not an instance of the config \(\/run\/openvpn\/a\.sock unix, 127\.0\.0\.1 7505\)/,
  );

  writeFileSync(s.openvpn, ['user nobody', 'group nogroup', 'management /run/openvpn/a.sock unix'].join('\n'));
  ({ problems } = await runChecks(s.config, { openvpnConfig: s.openvpn }));
  found(
    problems,
    /server\.conf:3: management-client-auth: missing: OpenVPN then admits clients without asking the daemon/,
    /server\.conf:3: management-client-user: missing: any local user/,
  );

  writeFileSync(
    s.openvpn,
    [
      'user nobody',
      'group nogroup',
      'management 127.0.0.1 7505 /etc/openvpn/b.pw',
      'management-client-auth',
      'auth-user-pass-optional',
      'management-hold',
    ].join('\n'),
  );
  const clean = await runChecks(s.config, { openvpnConfig: s.openvpn });
  assert.deepEqual(clean.problems, []);
  assert.deepEqual(clean.warnings, []);

  writeFileSync(s.openvpn, 'dev tun\n');
  ({ problems } = await runChecks(s.config, { openvpnConfig: s.openvpn }));
  found(problems, /server\.conf:1: management: missing: the daemon cannot reach this OpenVPN/, /server\.conf:1: user: missing/);
});

test('sockets and the runtime directory: modes open to every user, unknown groups, and metrics off loopback', async (t) => {
  const s = setup(t);
  s.writeConfig([
    'hook:',
    `  dir: ${s.runDir}`,
    '  group: nosuchgroup',
    'control:',
    `  socket: ${s.controlSocket}`,
    '  mode: "0666"',
    'metrics:',
    '  port: 9477',
    'root:',
    `  config: ${s.rootYaml}`,
  ]);
  chmodSync(s.runDir, 0o777);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(s.controlSocket, resolve));
  t.after(() => server.close());
  chmodSync(s.controlSocket, 0o666);
  const { problems, warnings } = await runChecks(s.config, { sudoers: s.sudoers });
  found(warnings, /flexscript\.yaml:3: hook\.group: group nosuchgroup does not exist here; the daemon cannot start until it does/);
  found(
    problems,
    /flexscript\.yaml:6: control\.mode: 0666 lets every local user reach the control socket; use 0660/,
    /control\.sock: the control socket has mode 0666, reachable by every local user; chmod o-rwx/,
    /\/run: the runtime directory has mode 0777, reachable by every local user/,
  );

  s.writeConfig(['metrics:', '  host: 0.0.0.0', '  port: 9477']);
  const off = await runChecks(s.config);
  found(
    off.problems,
    /flexscript\.yaml:2: metrics\.host: must be a loopback address \(127\.0\.0\.1, ::1, localhost\): metrics are not served beyond this machine/,
  );
});

test('root stage: a missing, invalid or untrusted root config, and a plugin group it lacks', async (t) => {
  const s = setup(t);
  rmSync(s.rootYaml);
  let { problems } = await s.check();
  found(problems, /root\.yaml: .*cannot read|root\.yaml.*(ENOENT|missing|not exist)/);

  writeFileSync(s.rootYaml, `${ROOT_YAML}colour: blue\n`, { mode: 0o644 });
  ({ problems } = await s.check());
  found(problems, /root\.yaml:8: colour: unknown key/);

  writeFileSync(s.rootYaml, ROOT_YAML.replace('staff', 'admins'), { mode: 0o644 });
  ({ problems } = await s.check());
  found(problems, /flexscript\.yaml:\d+: plugins\[0\]\.use: plugin firewall setup failed: group\(s\) staff are not defined in .*root\.yaml/);

  writeFileSync(s.rootYaml, ROOT_YAML);
  chmodSync(s.rootYaml, 0o666);
  ({ problems } = await s.check());
  found(problems, /root\.yaml: writable by group and others \(mode 0666\); the root stage refuses to start: chown root:root and chmod go-w it/);
});

test('sudoers: missing, invalid, too broad, for another user, or unsafe to sudo', async (t) => {
  const s = setup(t);
  const expected = rootCommand(s.rootYaml).join(' ');
  const missing = await runChecks(s.config, { openvpnConfig: s.openvpn, sudoers: join(s.dir, 'nope') });
  found(missing.problems, /nope: missing: the daemon cannot start the root stage/);

  writeFileSync(s.sudoers, 'nobody ALL=(root NOPASSWD\n');
  let { problems } = await s.check();
  found(problems, /sudoers-flexscript: visudo rejects/);

  writeFileSync(s.sudoers, 'nobody ALL=(root) NOPASSWD: ALL\n');
  ({ problems } = await s.check());
  found(problems, /sudoers-flexscript:1: allows `ALL`, not exactly `.*flexscript-root\.js --config .*root\.yaml`/);

  writeFileSync(s.sudoers, `nobody ALL=(root) NOPASSWD: ${expected}\nnobody ALL=(root) NOPASSWD: /usr/sbin/nft\n`);
  ({ problems } = await s.check());
  found(problems, /sudoers-flexscript:2: allows `\/usr\/sbin\/nft`, not exactly/);

  writeFileSync(s.sudoers, `daemon ALL=(root) NOPASSWD: ${expected}\n`);
  ({ problems } = await s.check());
  found(problems, /sudoers-flexscript:1: allows daemon, but the daemon runs as nobody/);

  writeFileSync(s.sudoers, `nobody ALL=(root) NOPASSWD: ${expected}\n`);
  chmodSync(s.sudoers, 0o666);
  ({ problems } = await s.check());
  found(problems, /sudoers-flexscript: owned by uid 0, mode 0666: sudo ignores it; chown root:root and chmod 0440 it/);

  chmodSync(s.sudoers, 0o440);
  mkdirSync(join(s.dir, 'unused'));
  assert.deepEqual((await s.check()).problems, []);
});

test('hook mode: plugins that keep kernel state or count sessions need hook.status-file, or a restart cuts every client off', async (t) => {
  const s = setup(t);
  const without = readFileSync(s.config, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('  status-file:'));
  s.writeConfig(without);
  const { problems } = await s.check();
  found(
    problems,
    /flexscript\.yaml:3: hook\.status-file: missing while firewall keeps kernel state or count sessions: a restarted daemon .* removes every connected client's firewall set elements and routes; add status-file: /,
  );
  // session counts and accounting are rebuilt from it too
  s.writeConfig([
    'hook:',
    `  dir: ${s.runDir}`,
    '  group: nogroup',
    'store:',
    `  sqlite: ${join(s.dir, 'accounting.db')}`,
    'plugins:',
    '  - use: accounting',
    '  - use: session-limit',
    '    options: { max: 2 }',
  ]);
  found(
    (await runChecks(s.config)).problems,
    /flexscript\.yaml:\d+: hook\.status-file: missing while accounting, session-limit keep kernel state or count sessions/,
  );
  // nothing to rebuild: no status file needed
  s.writeConfig(['hook:', `  dir: ${s.runDir}`, '  group: nogroup']);
  assert.deepEqual((await runChecks(s.config)).problems, []);
  // management mode rebuilds from status 3: no status file either
  s.writeConfig([
    'management:',
    '  instances:',
    '    - { name: a, socket: /run/openvpn/a.sock }',
    'root:',
    `  config: ${s.rootYaml}`,
    'plugins:',
    '  - use: firewall',
    '    options:',
    '      groups:',
    '        staff: { common-names: [alice] }',
  ]);
  assert.ok(!(await s.check()).problems.some((p) => /status-file/.test(p)));
});

test('hook mode: the status file must be readable by the daemon, status-version 3, and in a folder only root can change', async (t) => {
  const s = setup(t);
  // OpenVPN created it itself: root's, mode 0600
  chownSync(s.statusFile, 0, 0);
  chmodSync(s.statusFile, 0o600);
  let { problems } = await s.check();
  found(
    problems,
    /status\.txt: owned by root \(group 0\), mode 0600: the daemon \(nobody, group nogroup\) cannot read it, so a restart would cut every client off; chgrp nogroup .* && chmod 0640/,
  );
  chownSync(s.statusFile, 0, 65534);
  chmodSync(s.statusFile, 0o640);
  // OpenVPN writing version 2 (Debian's unit's --status-version 2 without a status-version 3 in the config)
  writeFileSync(s.statusFile, 'TITLE,OpenVPN 2.6.14\nTIME,2026-11-28 19:11:50,1795893110\nHEADER,CLIENT_LIST,Common Name\nEND\n');
  ({ problems } = await s.check());
  found(problems, /status\.txt: OpenVPN writes status-version 2 here, but the daemon reads version 3 only; put `status-version 3` in OpenVPN's config/);
  writeFileSync(s.statusFile, 'TITLE\tOpenVPN 2.6.14\nTIME\t2026-11-28 19:11:50\t1795893110\nEND\n');
  assert.deepEqual((await s.check()).problems, []);
  // OpenVPN opens it as root and follows links: its folder must be root's alone
  chownSync(join(s.dir, 'openvpn-status'), 65534, 65534);
  ({ problems } = await s.check());
  found(
    problems,
    /status\.txt: OpenVPN opens its status file as root and follows links, but .*openvpn-status is owned by nobody: whoever can write there can make root overwrite any file/,
  );
  chownSync(join(s.dir, 'openvpn-status'), 0, 65534);
  // not there yet: OpenVPN would make it root's, mode 0600
  rmSync(s.statusFile);
  const missing = await s.check();
  assert.deepEqual(missing.problems, []);
  found(missing.warnings, /status\.txt: hook\.status-file does not exist \(yet\): OpenVPN would create it readable by root only/);
  // OpenVPN's status and status-version lines must match
  writeFileSync(s.openvpn, readFileSync(s.openvpn, 'utf8').replace(/^status-version 3$/m, 'status-version 2'));
  found((await s.check()).problems, /server\.conf:\d+: status-version: the daemon reads status-version 3/);
});

test("password-auth's users file must be readable by the daemon's user: OpenVPN's in hook mode, the daemon unit's in management mode", async (t) => {
  const s = setup(t);
  const users = join(s.dir, 'users');
  // what `flexscript passwd` makes of a new file run as root: root:root 0640
  const made = spawnSync(process.execPath, [FLEXSCRIPT, 'passwd', 'alice', '--file', users], { input: 'correct horse\n', encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const lines = readFileSync(s.config, 'utf8').trimEnd().split('\n');
  s.writeConfig([...lines, '  - use: password-auth', '    options:', `      file: ${users}`]);
  const line = lines.length + 3;
  const message = (who: string, group: string, why: string) =>
    `${s.config}:${line}: plugins[1].options.file: the daemon runs as ${who} and cannot read the users file: ${why}; chgrp ${group} ${users} && chmod 0640 ${users} (root stays its owner; the daemon's group reads it)`;
  let { problems } = await s.check();
  assert.ok(problems.includes(message('nobody', 'nogroup', `${users} has uid 0, gid 0, mode 0640`)), problems.join('\n'));
  // the fix the message gives
  chownSync(users, 0, 65534);
  ({ problems } = await s.check());
  assert.deepEqual(
    problems.filter((p) => p.includes('users file')),
    [],
  );
  // readable, but in a folder the daemon cannot enter
  const closed = join(s.dir, 'closed');
  mkdirSync(closed, { mode: 0o700 });
  const inside = join(closed, 'users');
  writeFileSync(inside, readFileSync(users), { mode: 0o644 });
  s.writeConfig([...lines, '  - use: password-auth', '    options:', `      file: ${inside}`]);
  ({ problems } = await s.check());
  assert.ok(
    problems.some((p) =>
      p.startsWith(
        `${s.config}:${line}: plugins[1].options.file: the daemon runs as nobody and cannot read the users file: it cannot enter ${closed} (uid 0, gid 0, mode 0700); chgrp nogroup ${inside}`,
      ),
    ),
    problems.join('\n'),
  );

  // management mode: the daemon's user is not OpenVPN's; here the one management-client-user names
  const mgmt = join(s.dir, 'management.yaml');
  writeFileSync(
    mgmt,
    [
      'management:',
      '  instances:',
      '    - { name: a, socket: /run/openvpn/a.sock }',
      'plugins:',
      '  - use: password-auth',
      '    options:',
      `      file: ${users}`,
      '',
    ].join('\n'),
  );
  chownSync(users, 0, 0);
  writeFileSync(
    s.openvpn,
    ['user nobody', 'group nogroup', 'management /run/openvpn/a.sock unix', 'management-client-auth', 'management-client-user nobody'].join('\n'),
  );
  ({ problems } = await runChecks(mgmt, { openvpnConfig: s.openvpn }));
  assert.deepEqual(problems, [
    `${mgmt}:7: plugins[0].options.file: the daemon runs as nobody and cannot read the users file: ${users} has uid 0, gid 0, mode 0640; chgrp nogroup ${users} && chmod 0640 ${users} (root stays its owner; the daemon's group reads it)`,
  ]);
  // --daemon-user names it outright; root reads everything
  assert.deepEqual((await runChecks(mgmt, { openvpnConfig: s.openvpn, daemonUser: 'root' })).problems, []);
});

test("check type-checks the operator's .ts plugins against the published types: a typo fails at FILE:LINE:COL, a correct plugin passes", async (t) => {
  // a plugin folder like /etc/flexscript/plugins: outside the package, no node_modules beside it
  const dir = mkdtempSync(join(tmpdir(), 'fxs-plugin-types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'plugins'));
  const plugin = join(dir, 'plugins', 'office.ts');
  const source = (cn: string, deny: string) =>
    [
      "import type { PluginDefinition } from 'openvpn-flexscript';",
      '',
      'export default {',
      "  name: 'office',",
      '  setup: () => ({',
      "    'client-connect': (event, ctx) => {",
      `      if (event.${cn} === 'mallory') ctx.${deny}('not here');`,
      '    },',
      '  }),',
      '} satisfies PluginDefinition;',
      '',
    ].join('\n');
  writeFileSync(plugin, source('commonNam', 'denyy'));
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, ['instance: office', 'plugins:', '  - path: plugins/office.ts', ''].join('\n'));
  const typo = await runChecks(config);
  assert.deepEqual(typo.problems, [
    `${plugin}:7:17: Property 'commonNam' does not exist on type 'ClientConnectEvent'. Did you mean 'commonName'? (TS2551)`,
    `${plugin}:7:46: Property 'denyy' does not exist on type 'ConnectContext'. Did you mean 'deny'? (TS2551)`,
  ]);
  // run time is unchanged: the plugin still loads (its typo would just never match)
  assert.deepEqual(typo.plugins, ['office']);
  // the built command resolves the published types from dist/ as well
  const cli = flexscript('check', '--config', config);
  assert.equal(cli.status, 3, cli.stderr);
  assert.match(cli.stderr, /office\.ts:7:17: Property 'commonNam' does not exist on type 'ClientConnectEvent'\. Did you mean 'commonName'\?/);
  writeFileSync(plugin, source('commonName', 'deny'));
  assert.deepEqual((await runChecks(config)).problems, []);
  assert.equal(flexscript('check', '--config', config).status, 0);
});

test("management mode: the management socket's folder must exist, or OpenVPN cannot create the socket", async (t) => {
  const s = setup(t);
  const missing = join(s.dir, 'openvpn-run');
  writeFileSync(s.config, ['management:', '  instances:', `    - { name: a, socket: ${missing}/a.sock }`, 'plugins: []', ''].join('\n'));
  assert.deepEqual((await runChecks(s.config)).problems, [
    `${s.config}:3: management.instances[0].socket: ${missing} does not exist: OpenVPN cannot create its management socket there and exits at start; create it (mkdir -m 0755 ${missing}; below /run also a tmpfiles.d line \`d ${missing} 0755 root root -\` so it is there after a reboot)`,
  ]);
  mkdirSync(missing, { mode: 0o755 });
  assert.deepEqual((await runChecks(s.config)).problems, []);
});

test("hook mode: OpenVPN's tmp-dir is hook.tmp-dir; without one, deferral files in /tmp are a warning (systemd's PrivateTmp)", async (t) => {
  const s = setup(t);
  const tmp = join(s.dir, 'openvpn-tmp');
  const lines = readFileSync(s.config, 'utf8').trimEnd().split('\n');
  s.writeConfig(lines.flatMap((l) => (l === `  dir: ${s.runDir}` ? [l, `  tmp-dir: ${tmp}`] : [l])));
  let { problems } = await s.check();
  found(
    problems,
    /server\.conf:1: tmp-dir: hook\.tmp-dir is .*openvpn-tmp but OpenVPN creates its deferral files in \/tmp: the daemon cannot answer connects there; add `tmp-dir /,
  );
  const printed = flexscript('openvpn-config', '--config', s.config, '--mode', 'hook');
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, new RegExp(`^tmp-dir "${tmp.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"$`, 'm'));
  writeFileSync(s.openvpn, ['port 1194', 'dev tun', 'user nobody', 'group nogroup', printed.stdout].join('\n'));
  ({ problems } = await s.check());
  assert.deepEqual(problems, []);
  // no tmp-dir anywhere: works only while OpenVPN and the daemon share /tmp
  s.writeConfig(lines);
  writeFileSync(s.openvpn, readFileSync(s.openvpn, 'utf8').replace(/^tmp-dir .*$/m, ''));
  const { warnings } = await s.check();
  found(warnings, /server\.conf:1: tmp-dir: OpenVPN creates its deferral files in \/tmp: under systemd's PrivateTmp .* connects time out/);
});

// ---------------------------------------------------------------- the systemd units

const FIXTURE_UNIT = new URL('./fixtures/systemd/openvpn-server@.service', import.meta.url).pathname;
const HOOK_YAML = [
  'instance: vpn',
  'hook:',
  '  dir: /run/flexscript/vpn',
  '  group: nogroup',
  '  status-file: /run/openvpn-flexscript/status.txt',
  '  tmp-dir: /run/flexscript/openvpn-tmp',
  'plugins: []',
].join('\n');
const HOOK_OVPN = [
  'user nobody',
  'group nogroup',
  'status "/run/openvpn-flexscript/status.txt" 1',
  'status-version 3',
  'tmp-dir "/run/flexscript/openvpn-tmp"',
].join('\n');

/** Unit files below a fresh root: Debian's openvpn-server@ (the fixture) plus the given files. */
function unitRoot(t: TestContext, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'fxs-units-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'lib/systemd/system'), { recursive: true });
  writeFileSync(join(root, 'lib/systemd/system/openvpn-server@.service'), readFileSync(FIXTURE_UNIT, 'utf8'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function unitFindings(root: string, yaml = HOOK_YAML, ovpn = HOOK_OVPN) {
  const f = { problems: [] as string[], warnings: [] as string[] };
  checkUnits(parseConfig(yaml, '/etc/flexscript/flexscript.yaml').config, '/etc/openvpn/server/vpn.conf', parseOpenVpnConfig(ovpn), { unitRoot: root }, f);
  return f.problems;
}

const DROP_IN = 'etc/systemd/system/openvpn-server@.service.d/flexscript.conf';
const DAEMON = 'etc/systemd/system/flexscriptd.service';
const daemonUnit = (extra = '') =>
  `[Service]\nUser=nobody\nGroup=nogroup\nExecStart=/usr/bin/node flexscript.js run\nRuntimeDirectory=flexscript flexscript/openvpn-tmp\nProtectSystem=strict\nPrivateTmp=yes\n${extra}`;

test("check reads OpenVPN's unit: LimitNPROC=10 refuses hook mode at its FILE:LINE; a drop-in raising it (applied in name order, KEY= resets) fixes it", (t) => {
  const shipped = unitRoot(t, {});
  const line =
    readFileSync(FIXTURE_UNIT, 'utf8')
      .split('\n')
      .findIndex((l) => l.startsWith('LimitNPROC=')) + 1;
  const problems = unitFindings(shipped);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, new RegExp(`/lib/systemd/system/openvpn-server@\\.service:${line}: LimitNPROC: 10: in hook mode .*flexscript\\.conf`));
  assert.deepEqual(unitFindings(unitRoot(t, { [DROP_IN]: '[Service]\nLimitNPROC=512\n' })), []);
  // drop-ins apply in the order of their names, across directories: a later one wins
  const later = unitRoot(t, {
    [DROP_IN]: '[Service]\nLimitNPROC=512\n',
    'run/systemd/system/openvpn-server@vpn.service.d/zz-local.conf': '[Service]\nLimitNPROC=20\n',
  });
  assert.match(unitFindings(later).join('\n'), /zz-local\.conf:2: LimitNPROC: 20:/);
  // an empty assignment returns the setting to systemd's default (no limit)
  assert.deepEqual(unitFindings(unitRoot(t, { [DROP_IN]: '[Service]\nLimitNPROC=\n' })), []);
  // management mode starts no hook: the limit is not its concern
  const mgmt = ['instance: vpn', 'management:', '  instances:', '    - name: vpn', '      socket: /run/openvpn/vpn.sock', 'plugins: []'].join('\n');
  assert.deepEqual(unitFindings(shipped, mgmt, 'user nobody\ngroup nogroup\nmanagement /run/openvpn/vpn.sock unix\nmanagement-client-user flexscript\n'), []);
});

test('check reads the units: private /tmp holding the deferral files, a read-only runtime directory, --status after --config, the wrong daemon user', (t) => {
  const ok = { [DROP_IN]: '[Service]\nLimitNPROC=512\n' };
  // no tmp-dir: OpenVPN's deferral files stay in its private /tmp
  const noTmp = unitFindings(unitRoot(t, ok), HOOK_YAML.replace(/ {2}tmp-dir: .*\n/, ''), HOOK_OVPN.replace(/tmp-dir .*/, ''));
  assert.match(noTmp.join('\n'), /openvpn-server@\.service:\d+: PrivateTmp: OpenVPN's \/tmp is private to its unit, and its deferral files go to \/tmp/);
  // ProtectSystem=strict in a drop-in leaves /run read-only to OpenVPN; ReadWritePaths= fixes it
  const strict = unitFindings(unitRoot(t, { [DROP_IN]: '[Service]\nLimitNPROC=512\nProtectSystem=strict\n' }));
  assert.match(strict.join('\n'), /flexscript\.conf:3: ProtectSystem: ProtectSystem=strict leaves \/run\/flexscript\/vpn\/spool read-only to OpenVPN's unit/);
  assert.match(strict.join('\n'), /leaves \/run\/openvpn-flexscript read-only/);
  assert.deepEqual(
    unitFindings(unitRoot(t, { [DROP_IN]: '[Service]\nLimitNPROC=512\nProtectSystem=strict\nReadWritePaths=/run/flexscript /run/openvpn-flexscript\n' })),
    [],
  );
  // a command line that puts --status after --config overrides the config's status lines
  const exec = unitFindings(
    unitRoot(t, {
      [DROP_IN]:
        '[Service]\nLimitNPROC=512\nExecStart=\nExecStart=/usr/sbin/openvpn --config %i.conf --status %t/openvpn-server/status-%i.log --status-version 2\n',
    }),
  );
  assert.match(exec.join('\n'), /flexscript\.conf:4: ExecStart: --status \/run\/openvpn-server\/status-vpn\.log comes after --config/);
  assert.match(exec.join('\n'), /ExecStart: --status-version 2 comes after --config/);
  // the daemon's unit: its user must be OpenVPN's in hook mode, and its runtime directory writable
  assert.deepEqual(unitFindings(unitRoot(t, { ...ok, [DAEMON]: daemonUnit() })), []);
  const wrongUser = unitFindings(unitRoot(t, { ...ok, [DAEMON]: daemonUnit().replace('User=nobody', 'User=flexscript') }));
  assert.match(wrongUser.join('\n'), /flexscriptd\.service:2: User: flexscript, but OpenVPN runs its hooks as nobody/);
  const readOnly = unitFindings(
    unitRoot(t, { ...ok, [DAEMON]: daemonUnit().replace('RuntimeDirectory=flexscript flexscript/openvpn-tmp', 'RuntimeDirectory=other') }),
  );
  assert.match(
    readOnly.join('\n'),
    /flexscriptd\.service:6: ProtectSystem: ProtectSystem=strict leaves \/run\/flexscript\/vpn\/spool read-only to the daemon's unit/,
  );
  // management mode: the daemon's user is the one OpenVPN lets in
  const mgmt = ['instance: vpn', 'management:', '  instances:', '    - name: vpn', '      socket: /run/openvpn/vpn.sock', 'plugins: []'].join('\n');
  const mgmtUnit = daemonUnit().replace('User=nobody\nGroup=nogroup', 'User=flexscript\nGroup=flexscript').replace(' flexscript/openvpn-tmp', '');
  const ovpn = 'user nobody\ngroup nogroup\nmanagement /run/openvpn/vpn.sock unix\nmanagement-client-user nobody\n';
  assert.match(
    unitFindings(unitRoot(t, { [DAEMON]: mgmtUnit }), mgmt, ovpn).join('\n'),
    /flexscriptd\.service:2: User: flexscript, but OpenVPN's management-client-user is nobody/,
  );
});

test('totp mode dynamic in hook mode needs user-pass-verify in ask mode and the client-crresponse line, named with the line to add', async (t) => {
  const s = setup(t);
  const secrets = join(s.dir, 'totp-secrets');
  writeFileSync(secrets, 'alice:JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n', { mode: 0o600 });
  const totp = (mode: string) => ['  - use: totp', '    options:', `      file: ${secrets}`, `      mode: ${mode}`];
  const hook = ['instance: office', 'hook:', `  dir: ${s.runDir}`, '  group: nogroup', 'plugins:'];
  const hookLines = (problems: readonly string[]) => problems.filter((p) => /auth-user-pass-verify|client-crresponse|mode dynamic/.test(p));
  /** OpenVPN's config as `flexscript openvpn-config` prints it for the config as it is now. */
  const printConfig = () => {
    const printed = flexscript('openvpn-config', '--config', s.config, '--mode', 'hook');
    assert.equal(printed.status, 0, printed.stderr);
    writeFileSync(s.openvpn, ['user nobody', 'group nogroup', printed.stdout].join('\n'));
    return printed.stdout;
  };
  s.writeConfig([...hook, ...totp('static')]);
  const staticLines = printConfig();
  assert.doesNotMatch(staticLines, /client-crresponse/);
  assert.deepEqual(hookLines((await runChecks(s.config, { openvpnConfig: s.openvpn })).problems), []);

  // dynamic with the static lines: the hook must wait for the question, and the answer needs its hook
  s.writeConfig([...hook, ...totp('dynamic')]);
  const problems = hookLines((await runChecks(s.config, { openvpnConfig: s.openvpn })).problems);
  found(
    problems,
    /server\.conf:\d+: auth-user-pass-verify: runs in defer mode but ask mode is needed: the totp plugin's mode dynamic asks the client.*; use: auth-user-pass-verify ".*flexscript-hook .* ask deny 5" via-file/,
    /server\.conf:1: client-crresponse: missing: .*add: client-crresponse ".*flexscript-hook .* defer deny 5"/,
  );
  assert.equal(problems.length, 2, problems.join('\n'));
  // the lines openvpn-config prints for it pass
  assert.match(printConfig(), /^client-crresponse ".*flexscript-hook .* defer deny 5"$/m);
  assert.deepEqual(hookLines((await runChecks(s.config, { openvpnConfig: s.openvpn })).problems), []);
  // and back to static: ask mode is not needed, and holds OpenVPN for nothing
  s.writeConfig([...hook, ...totp('static')]);
  found((await runChecks(s.config, { openvpnConfig: s.openvpn })).problems, /auth-user-pass-verify: runs in ask mode but defer mode is needed/);
  // without OpenVPN's config, mode dynamic in hook mode is no problem of its own
  s.writeConfig([...hook, ...totp('dynamic')]);
  assert.deepEqual(hookLines((await runChecks(s.config)).problems), []);
});

test("flexscript check reads the console's section: the users file, the audit log's folder, and a real provider's discovery (reported); broken ones fail at FILE:LINE", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-check-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { startProvider } = await import('./support/oidc-provider.ts');
  const provider = await startProvider(t, { redirectUris: ['http://127.0.0.1:8080/login/oidc/callback'], users: {} });
  const users = join(dir, 'console-users');
  writeFileSync(users, 'olga:$2y$10$abcdefghijklmnopqrstuuCZ2Ks1Xk0rPYxYl5Aqi0rF3dsfoWRf.:operator\n', { mode: 0o640 });
  const config = join(dir, 'flexscript.yaml');
  const write = (auditDir: string) =>
    writeFileSync(
      config,
      [
        'instance: office',
        'management:',
        '  instances:',
        '    - name: office',
        `      socket: ${join(dir, 'management.sock')}`,
        'console:',
        '  auth:',
        `    users-file: ${users}`,
        '    oidc:',
        `      issuer: ${provider.issuer}`,
        '      client-id: console',
        '      redirect-url: http://127.0.0.1:8080/login/oidc/callback',
        '      roles: { operator: [vpn-ops] }',
        `  audit-log: ${join(auditDir, 'audit.jsonl')}`,
        '',
      ].join('\n'),
    );
  // spawned, not spawnSync: the provider answers from this process
  const run = (): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [FLEXSCRIPT, 'check', '--config', config]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
  write(dir);
  const ok = await run();
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(
    ok.stdout,
    new RegExp(`^console: OpenID Connect provider ${provider.issuer} answers \\(authorization endpoint ${provider.issuer}/auth\\)$`, 'm'),
  );
  assert.match(ok.stdout, /checked: config, plugins, sockets, console\n$/);

  writeFileSync(users, 'olga:not-a-hash:operator\n');
  write(join(dir, 'missing'));
  await provider.stop();
  const bad = await run();
  assert.equal(bad.status, 3, bad.stdout);
  const lines = bad.stderr.trim().split('\n');
  assert.equal(lines.length, 3, bad.stderr);
  assert.match(lines[0]!, new RegExp(`^${users}:1: .*; fix the line \\(name:hash:role`));
  assert.match(lines[1]!, new RegExp(`^${config}:14: console\\.audit-log: ${dir}/missing does not exist`));
  assert.match(
    lines[2]!,
    new RegExp(
      `^${config}:10: console\\.auth\\.oidc\\.issuer: the provider's discovery document \\(${provider.issuer}/\\.well-known/openid-configuration\\) cannot be fetched`,
    ),
  );
});

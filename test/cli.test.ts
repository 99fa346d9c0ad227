/**
 * The command line an operator expects: --version, a default config ($FLEXSCRIPT_CONFIG, else
 * /etc/flexscript/flexscript.yaml), the documented exit codes (docs/cli.md), check --json,
 * status without a daemon, openvpn-config's mode from the config, bench --help, and the log
 * formats. Runs bin/flexscript.js, the compiled product.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { BENCH_MODES } from '../src/bench/bench-modes.ts';
import { FLEXSCRIPT } from '../src/lab/daemon-process.ts';
import { createLogger, textLine } from '../src/logger.ts';
import { statusTable } from '../src/cli/control.ts';
import { MAX_COLUMN_WIDTH } from '../src/cli/text-table.ts';

const flexscript = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('--version prints the package version; help and version exit 0', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = flexscript([flag]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
  }
  const help = flexscript(['--help']);
  assert.equal(help.status, 0);
  assert.match(
    help.stdout,
    /Exit status: 0 ok, 1 failed, 2 usage \(the command line\), 3 configuration invalid \(or check found problems\), 4 daemon not reachable\./,
  );
});

test('a wrong command line exits 2: an unknown verb or option, a missing argument, a bad choice', () => {
  for (const args of [['frobnicate'], ['check', '--colour'], ['kill'], ['openvpn-config', '--mode', 'sideways'], ['bench', '--modes', 'hook,warp']]) {
    const r = flexscript(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.match(flexscript(['bench', '--modes', 'hook,warp']).stderr, /unknown mode\(s\): warp \(modes: floor, sh-noop/);
});

test('without --config every verb reads $FLEXSCRIPT_CONFIG, else /etc/flexscript/flexscript.yaml', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'elsewhere.yaml');
  writeFileSync(config, 'instance: x\nplugins: []\n');
  const viaEnv = flexscript(['check'], { FLEXSCRIPT_CONFIG: config });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.equal(viaEnv.stdout, `${config}: OK (0 plugin(s): none); checked: config, plugins, sockets\n`);
  // --config wins over the environment
  const other = join(dir, 'other.yaml');
  writeFileSync(other, 'instance: y\n');
  assert.match(flexscript(['check', '--config', other], { FLEXSCRIPT_CONFIG: config }).stdout, /other\.yaml: OK/);
  // neither: the default path, named in the help and in the error
  assert.match(flexscript(['status', '--help']).stdout.replace(/\s+/g, ' '), /default: "\/etc\/flexscript\/flexscript\.yaml", env: FLEXSCRIPT_CONFIG/);
  if (!spawnSync('test', ['-e', '/etc/flexscript/flexscript.yaml']).status) return; // a machine with an installed config
  const missing = flexscript(['check']);
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /^\/etc\/flexscript\/flexscript\.yaml:1: \(top level\): cannot read: ENOENT/);
});

test('check: exit 3 with one line per problem, and --json with ok, problems, warnings, plugins, what plugins found and checked', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, 'instance: x\npipeline:\n  timeout: 2\n  concurency: 4\n');
  const lines = flexscript(['check', '--config', config]);
  assert.equal(lines.status, 3);
  assert.equal(
    lines.stderr,
    `${config}:3: pipeline.timeout: a duration needs its unit: write 2s for 2 seconds (or 2ms, 2m)\n${config}:4: pipeline.concurency: unknown key; did you mean concurrency?\n`,
  );
  const json = flexscript(['check', '--config', config, '--json']);
  assert.equal(json.status, 3);
  assert.equal(json.stderr, '');
  assert.deepEqual(JSON.parse(json.stdout), {
    config,
    ok: false,
    problems: [
      `${config}:3: pipeline.timeout: a duration needs its unit: write 2s for 2 seconds (or 2ms, 2m)`,
      `${config}:4: pipeline.concurency: unknown key; did you mean concurrency?`,
    ],
    warnings: [],
    plugins: [],
    found: [],
    checked: ['config', 'plugins', 'sockets'],
  });
  writeFileSync(config, 'instance: x\npipeline:\n  timeout: 2s\n');
  const good = flexscript(['check', '--config', config, '--json']);
  assert.equal(good.status, 0, good.stdout);
  assert.equal((JSON.parse(good.stdout) as { ok: boolean }).ok, true);
});

test('status with no daemon exits 4 and says how to find out why', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'flexscript.yaml');
  const socket = join(dir, 'control.sock');
  writeFileSync(config, `instance: x\ncontrol:\n  socket: ${socket}\n`);
  for (const verb of ['status', 'watch']) {
    const r = flexscript([verb, '--config', config]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(
      r.stderr,
      `cannot reach the daemon at ${socket}: connect ENOENT ${socket}; is it running? \`systemctl status flexscriptd\` says, and its log says why it stopped: \`journalctl -u flexscriptd -e\`\n`,
    );
  }
  // the daemon itself: a config that does not load is exit 3 as well
  const run = flexscript(['run', '--config', join(dir, 'missing.yaml')]);
  assert.equal(run.status, 3, run.stderr);
  assert.match(run.stderr, /missing\.yaml:1: \(top level\): cannot read: ENOENT/);
  // a config that does not load is exit 3, not 4
  writeFileSync(config, 'instance: x\ncontrol:\n  sokcet: /x\n');
  assert.equal(flexscript(['status', '--config', config]).status, 3);
});

test('openvpn-config takes its mode from the config; a config with both sections needs --mode', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, 'instance: x\nmanagement:\n  instances:\n    - { name: vpn, socket: /run/openvpn/vpn.sock }\n');
  const mgmt = flexscript(['openvpn-config', '--config', config]);
  assert.equal(mgmt.status, 0, mgmt.stderr);
  assert.match(mgmt.stdout, /^management \/run\/openvpn\/vpn\.sock unix/m);
  assert.match(mgmt.stdout, /^management-client-auth$/m);
  writeFileSync(config, `instance: x\nhook:\n  dir: ${join(dir, 'run')}\n  group: nogroup\n`);
  const hook = flexscript(['openvpn-config', '--config', config]);
  assert.equal(hook.status, 0, hook.stderr);
  assert.match(hook.stdout, /^client-connect ".*flexscript-hook /m);
  writeFileSync(config, `instance: x\nhook:\n  dir: ${join(dir, 'run')}\nmanagement:\n  instances:\n    - { name: vpn, socket: /run/openvpn/vpn.sock }\n`);
  const both = flexscript(['openvpn-config', '--config', config]);
  assert.equal(both.status, 2);
  assert.equal(both.stderr, `${config}: has both hook: and management:; give --mode hook or --mode management\n`);
  assert.equal(flexscript(['openvpn-config', '--config', config, '--mode', 'management']).status, 0);
});

test('bench --help names every mode it runs', () => {
  const r = flexscript(['bench', '--help']);
  assert.equal(r.status, 0);
  const text = r.stdout.replace(/\s+/g, ' ');
  for (const mode of BENCH_MODES) assert.ok(text.includes(mode), `${mode} in bench --help`);
  assert.doesNotMatch(text, /five ways/);
});

test('tables cap each column and name their time zone (local, from TZ)', () => {
  const row = (commonName: string) => ({ instance: 'vpn', commonName, vpnAddress: '10.8.0.2', since: '2026-11-28T10:00:00.000Z' });
  const table = statusTable([row('a'.repeat(300)), row('bob')]);
  const [head, long] = table.split('\n');
  assert.match(head!, /SINCE \(UTC\)|SINCE \([A-Za-z_/+-]+\)/);
  assert.ok(long!.includes(`${'a'.repeat(MAX_COLUMN_WIDTH - 1)}…`), long);
  assert.ok(!long!.includes('a'.repeat(MAX_COLUMN_WIDTH)), 'cut at the cap');
  // the zone is the system's: TZ decides, in the head and in the times
  const zoned = (tz: string) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('${new URL('../src/cli/control.ts', import.meta.url).pathname}').then((m) => console.log(m.statusTable([${JSON.stringify(row('bob'))}])))`,
      ],
      { encoding: 'utf8', env: { ...process.env, TZ: tz } },
    ).stdout;
  assert.match(zoned('Europe/Berlin'), /SINCE \(Europe\/Berlin\)[\s\S]*2026-11-28 11:00:00/);
  assert.match(zoned('UTC'), /SINCE \(UTC\)[\s\S]*2026-11-28 10:00:00/);
});

test('logs: text for people (level, plugin, message, fields), JSON for shippers, a syslog priority for journald', (t) => {
  const json =
    '{"level":40,"time":"2026-11-30T10:00:00.000Z","pid":7,"plugin":"password-auth","msg":"users file is readable","file":"/etc/flexscript/users","n":3}';
  assert.equal(textLine(json), '2026-11-30T10:00:00.000Z WARN  [password-auth] users file is readable file=/etc/flexscript/users n=3');
  assert.equal(textLine(json, false), 'WARN  [password-auth] users file is readable file=/etc/flexscript/users n=3');
  // client text stays one line: quotes and newlines are escaped
  assert.equal(textLine('{"level":30,"msg":"denied","commonName":"eve\\nx y"}', false), 'INFO  denied commonName="eve\\nx y"');

  const dir = tempDir(t);
  const script = join(dir, 'log.ts');
  writeFileSync(
    script,
    `import { createLogger } from '${new URL('../src/logger.ts', import.meta.url).pathname}';\nconst log = createLogger('debug', undefined, process.argv[2] as 'auto');\nlog.info({ plugin: 'p' }, 'hello');\nlog.error('broken');\nlog.debug('detail');\n`,
  );
  const run = (format: string, env: NodeJS.ProcessEnv = {}) => {
    const out = join(dir, env.JOURNAL_STREAM ? 'journal.txt' : `out-${format}.txt`);
    const r = spawnSync('sh', ['-c', `exec "$0" --import tsx "$1" "$2" > "$3"`, process.execPath, script, format, out], { env: { ...process.env, ...env } });
    assert.equal(r.status, 0, String(r.stderr));
    return readFileSync(out, 'utf8');
  };
  // auto, to a file: JSON
  const auto = run('auto').trim().split('\n');
  assert.deepEqual(
    auto.map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['hello', 'broken', 'detail'],
  );
  assert.match(run('text'), /^\S+ INFO {2}\[p\] hello\n\S+ ERROR broken\n\S+ DEBUG detail\n$/);
  // under systemd: JOURNAL_STREAM names stdout (the file here) as DEV:INODE; priorities 6, 3, 7
  const out = join(dir, 'journal.txt');
  writeFileSync(out, '');
  const st = spawnSync('stat', ['-c', '%d:%i', out], { encoding: 'utf8' }).stdout.trim();
  assert.equal(run('auto', { JOURNAL_STREAM: st }), '<6>INFO  [p] hello\n<3>ERROR broken\n<7>DEBUG detail\n');
  // JSON for a shipper still carries the priority journald strips
  assert.match(run('json', { JOURNAL_STREAM: st }), /^<6>\{"level":30,.*"msg":"hello"\}\n<3>\{/);
  assert.equal(typeof createLogger, 'function');
});

/**
 * setup.sh, the README's first command: it installs what the demo runs (its list is the demo's)
 * and what `npm ci` builds with, says so before it installs, installs only as root, and prints
 * the exact command otherwise. apt-get, dpkg-query and npm are stand-ins on PATH here, which
 * record what they were asked: the test installs nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { DEMO_REQUIREMENTS } from '../src/cli/demo-requirements.ts';

const REPO = new URL('..', import.meta.url).pathname;
const SETUP = join(REPO, 'setup.sh');
const isRoot = process.getuid?.() === 0;

/** A folder of stand-ins for the system's package tools; each logs its arguments to LOG. */
function standIns(t: TestContext, o: { missing: readonly string[]; node?: string; candidate?: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-setup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o777);
  const log = join(dir, 'log');
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`, { mode: 0o755 });
  };
  const missing = o.missing.join(' ');
  // dpkg-query -W -f=... PKG: "install ok installed" unless PKG is one of the missing
  script('dpkg-query', `for p in ${missing}; do [ "$p" = "$3" ] && exit 1; done\nprintf 'install ok installed'`);
  script('apt-get', 'exit 0');
  script('apt-cache', `printf 'nodejs:\\n  Installed: (none)\\n  Candidate: ${o.candidate ?? '20.19.2+dfsg-1'}\\n'`);
  script('npm', 'exit 0');
  if (o.node) script('node', `echo ${o.node}`);
  return {
    run: (args: string[] = [], asUser?: string) => {
      const env = { PATH: `${dir}:/usr/bin:/bin`, HOME: '/tmp' };
      const argv = asUser ? ['setpriv', '--reuid', asUser, '--regid', 'nogroup', '--clear-groups', '--', 'bash', SETUP, ...args] : ['bash', SETUP, ...args];
      return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env });
    },
    /** What changes the machine: apt-get and npm, as called */
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []).filter((l) => /^(apt-get|npm) /.test(l)),
  };
}

test("setup.sh installs the demo's packages, exactly the demo's list, and what the native modules build with", () => {
  const r = spawnSync('bash', [SETUP, '--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const groups = Object.fromEntries(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.split(':')[0], l.slice(l.indexOf(':') + 1).trim()]),
  );
  assert.deepEqual(
    groups.demo?.split(' '),
    DEMO_REQUIREMENTS.map((d) => d.debianPackage),
  );
  assert.deepEqual(groups.build?.split(' '), ['build-essential', 'python3']);
});

test('each program the demo starts comes from the package named for it', (t) => {
  if (spawnSync('sh', ['-c', 'command -v dpkg-query']).status !== 0) return t.skip('needs dpkg-query (Debian)');
  for (const { program, debianPackage } of DEMO_REQUIREMENTS) {
    const files = spawnSync('dpkg-query', ['-L', debianPackage], { encoding: 'utf8' });
    if (files.status !== 0) {
      t.diagnostic(`${debianPackage} is not installed here: not checked`);
      continue;
    }
    assert.match(files.stdout, new RegExp(`^/(usr/)?s?bin/${program}$`, 'm'), `${debianPackage} installs ${program}`);
  }
});

test('setup.sh as another user: names what is missing and the exact command for root, installs nothing, runs no npm', {
  skip: isRoot ? false : 'needs root (to run it as nobody)',
}, (t) => {
  const s = standIns(t, { missing: ['openvpn', 'build-essential'] });
  const r = s.run([], 'nobody');
  assert.equal(r.status, 1, r.stderr);
  assert.equal(
    r.stdout,
    'setup: missing Debian packages: openvpn build-essential. Install them as root, then run bash setup.sh again:\n  sudo apt-get install -y openvpn build-essential\n',
  );
  assert.deepEqual(s.calls(), []);
});

test('setup.sh as root: says what it installs, installs it with apt-get, then npm ci', { skip: isRoot ? false : 'needs root' }, (t) => {
  const s = standIns(t, { missing: ['openvpn', 'openssl'] });
  const r = s.run();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^setup: installing Debian packages: openvpn openssl \(apt-get install -y openvpn openssl\)$/m);
  assert.deepEqual(s.calls(), ['apt-get update -qq', 'apt-get install -y -qq openvpn openssl', 'npm ci --no-audit --no-fund']);
  assert.match(r.stdout, /^setup: ready: npm run demo$/m);
  // nothing missing: no apt-get at all
  const again = standIns(t, { missing: [] });
  assert.equal(again.run().status, 0);
  assert.deepEqual(again.calls(), ['npm ci --no-audit --no-fund']);
});

test('setup.sh --check only reports', (t) => {
  const s = standIns(t, { missing: ['openvpn'] });
  const r = s.run(['--check']);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, 'setup: missing Debian packages: openvpn\n  apt-get install -y openvpn\n');
  assert.deepEqual(s.calls(), []);
  const none = standIns(t, { missing: [] });
  const ok = none.run(['--check']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'setup: nothing missing\n');
});

test("Node.js older than 20: Debian's nodejs when it is new enough, else NodeSource's command and a stop", (t) => {
  // Debian 13: its nodejs is 20, so it is installed with the rest
  const debian13 = standIns(t, { missing: ['nodejs', 'npm'], node: 'v18.19.0', candidate: '20.19.2+dfsg-1' });
  const r13 = debian13.run(['--check']);
  assert.equal(r13.status, 1);
  assert.match(r13.stdout, /^setup: missing Debian packages: nodejs npm$/m);
  // Debian 12: 18 is all it has; adding another vendor's repository is the operator's call
  const debian12 = standIns(t, { missing: [], node: 'v18.19.0', candidate: '18.19.0+dfsg-6~deb12u2' });
  const r12 = debian12.run();
  assert.equal(r12.status, 1);
  assert.match(r12.stdout, /^setup: Node\.js 20 or newer is needed \(this is v18\.19\.0\), and this system's nodejs package is 18\.19\.0\+dfsg-6~deb12u2\.$/m);
  assert.match(r12.stdout, /^ {2}curl -fsSL https:\/\/deb\.nodesource\.com\/setup_22\.x \| bash - && apt-get install -y nodejs$/m);
  assert.deepEqual(debian12.calls(), []);
});

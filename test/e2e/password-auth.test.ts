/**
 * The password-auth plugin through real OpenVPN, in management mode and in hook mode with both
 * of OpenVPN's ways of handing over credentials (via-file and via-env): right passwords get in,
 * wrong ones and unknown users get AUTH_FAILED, lockouts per user and per address, hostile user
 * names arrive as data, and no password is left in any log or file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/util/password-hash.ts';
import { parseConfig } from '../../src/config/load-config.ts';
import type { EventName } from '../../src/events/event-map.ts';
import { FLEXSCRIPT, HOOK, ownedDir, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { hookModeLines } from '../../src/sources/hook/openvpn-lines.ts';
import { CAPS, modeLab, type Mode } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;

// every password is distinctive, so a copy anywhere on disk is found
const USERS = {
  alice: 'Alice-Pa55-e2e',
  bob: 'Bob-Pa55-e2e',
  // a user name OpenVPN passes as is: quotes, command substitutions, ;, spaces, UTF-8
  'ev"il\' $(touch /tmp/fxs-pw-1) `touch /tmp/fxs-pw-2`; Zoë 雪': `Hostile-Pa55 $(touch /tmp/fxs-pw-3) '"\``,
} as const;
const CAROL_BCRYPT = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'; // rasmuslerdorf (PHP's example)
const WRONG = 'Wrong-Gue55-e2e';
const MARKS = ['/tmp/fxs-pw-1', '/tmp/fxs-pw-2', '/tmp/fxs-pw-3'];

type Flavour = { mode: Mode; method?: 'via-file' | 'via-env' };
const FLAVOURS: Flavour[] = [{ mode: 'management' }, { mode: 'hook', method: 'via-file' }, { mode: 'hook', method: 'via-env' }];

async function passwordLab(t: TestContext, { mode, method }: Flavour) {
  for (const m of MARKS) rmSync(m, { force: true });
  // the users file and the hook wrapper live outside the lab: the daemon's config needs the path first
  const dir = mkdtempSync(join(tmpdir(), 'fxs-pwauth-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const usersFile = join(dir, 'users');
  const lines = [...(await Promise.all(Object.entries(USERS).map(async ([u, p]) => `${u}:${await hashPassword(p)}`))), `carol:${CAROL_BCRYPT}`];
  writeFileSync(usersFile, `# e2e users\n${lines.join('\n')}\n`, { mode: 0o640 });
  chownSync(usersFile, 0, RUN_AS.gid);
  // the hook client behind a wrapper that notes its argument count for user-pass-verify:
  // 4 for via-env, 5 (the credentials file) for via-file
  const argcFile = join(ownedDir(join(dir, 'argc')), 'argc');
  const wrapper = join(dir, 'hook-wrapper');
  writeFileSync(wrapper, `#!/bin/sh\n[ "$script_type" = user-pass-verify ] && printf '%s\\n' "$#" >> ${argcFile}\nexec /bin/sh ${HOOK} "$@"\n`, {
    mode: 0o755,
  });
  const events: EventName[] = ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'];
  const extraServer: string[] = [];
  const h = await modeLab(t, mode, {
    passwords: true,
    // hashing (argon2, bcrypt cost 10) on a busy 2-core machine can take longer than the lab's 1 s
    pluginTimeout: '10s',
    events,
    hookPath: (labDir) => {
      if (method === 'via-env') {
        // what `flexscript openvpn-config` writes for via-env; OpenVPN takes the later lines
        const yaml = [
          'hook:',
          `  dir: ${join(labDir, 'work', 'run')}`,
          '  group: nogroup',
          '  timeout: 5s',
          '  events:',
          '    user-pass-verify: { method: via-env }',
        ].join('\n');
        const out = hookModeLines(parseConfig(yaml, 'via-env.yaml').config.hook!, events, wrapper);
        extraServer.push(...out.filter((l) => l.startsWith('script-security') || l.startsWith('auth-user-pass-verify')));
        assert.equal(extraServer[0], 'script-security 3');
        assert.match(extraServer[1] ?? '', /^auth-user-pass-verify ".*" via-env$/);
      }
      return wrapper;
    },
    extraServer,
    plugins: [
      '  - use: password-auth',
      '    options:',
      `      file: ${usersFile}`,
      '      limits:',
      '        user: { failures: 2, lockout: 1m }',
      '        address: { failures: 5, lockout: 1m }',
    ],
  });
  return { h, usersFile, argcFile };
}

/** Files under `dir` holding any of the passwords, except the clients' own credential files. */
function filesWithPasswords(dir: string): string[] {
  const found: string[] = [];
  const secrets = [...Object.values(USERS), WRONG, 'rasmuslerdorf'];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && !name.endsWith('.auth')) {
        const text = readFileSync(p, 'latin1');
        if (secrets.some((s) => text.includes(Buffer.from(s).toString('latin1')))) found.push(p);
      }
    }
  };
  walk(dir);
  return found;
}

for (const flavour of FLAVOURS) {
  const label = flavour.method ? `${flavour.mode} mode, ${flavour.method}` : `${flavour.mode} mode`;
  describe(`password-auth, ${label}`, { skip: isRoot ? false : 'needs root' }, () => {
    test('right passwords connect; wrong ones, unknown users and locked-out users and addresses get AUTH_FAILED', async (t) => {
      const { h, argcFile } = await passwordLab(t, flavour);
      const login = (commonName: string, username: string, password: string) => h.lab.startClient({ commonName, port: h.port, username, password });
      /** The reasons of the user-pass-verify denials of `username`, once there are at least `n`. */
      const denials = (username: string, n: number) =>
        waitFor(`${n} denial(s) of ${username}`, () => {
          const reasons = h.daemon
            .events()
            .flatMap((e) =>
              e.channel === 'decision' && e.data.event === 'user-pass-verify' && e.data.verdict === 'deny' && e.data.username === username
                ? [String(e.data.reason)]
                : [],
            );
          return reasons.length >= n && reasons;
        });

      const [alice, carol] = await Promise.all([login('c-alice', 'alice', USERS.alice), login('c-carol', 'carol', 'rasmuslerdorf')]);
      await Promise.all([alice.waitConnected(), carol.waitConnected()]);
      if (flavour.method) {
        const argc = readFileSync(argcFile, 'utf8').trim().split('\n');
        assert.ok(
          argc.every((n) => n === (flavour.method === 'via-env' ? '4' : '5')),
          `hook arguments: ${argc.join(',')}`,
        );
      }

      // two wrong passwords for bob lock bob; with an unknown user that is 3 failures from 127.0.0.1
      const failing = await Promise.all([login('c-bob-1', 'bob', WRONG), login('c-bob-2', 'bob', WRONG), login('c-zed', 'zed', WRONG)]);
      await Promise.all(failing.map((c) => c.waitAuthFailed()));
      assert.deepEqual(await denials('zed', 1), ['unknown user']);
      const bobDenied = await denials('bob', 2);
      assert.equal(bobDenied.length, 2);
      assert.ok(bobDenied.every((r) => r.startsWith('wrong password')));
      assert.ok(bobDenied.some((r) => r.endsWith('user locked out for 60 s')));

      // bob is locked out: even the right password is refused, without checking it
      const bobRight = await login('c-bob-3', 'bob', USERS.bob);
      await bobRight.waitAuthFailed();
      assert.match((await denials('bob', 3))[2] ?? '', /^user locked out after repeated failures/);
      // ...while alice still gets in from the same address
      const alice2 = await login('c-alice-2', 'alice', USERS.alice);
      await alice2.waitConnected();

      // two more failures make five from this address: now it is locked for everyone
      const more = await Promise.all([login('c-yan', 'yan', WRONG), login('c-alice-3', 'alice', WRONG)]);
      await Promise.all(more.map((c) => c.waitAuthFailed()));
      const carol2 = await login('c-carol-2', 'carol', 'rasmuslerdorf');
      await carol2.waitAuthFailed();
      assert.match((await denials('carol', 1))[0] ?? '', /^address locked out after repeated failures/);
      if (CAPS[flavour.mode].denyReason) assert.match(carol2.log(), /AUTH_FAILED,authentication failed/, 'the client gets only the generic reason');

      // nothing anywhere holds a password: logs, records, the spool, OpenVPN's files
      assert.deepEqual(filesWithPasswords(h.lab.dir), []);
      const run = join(h.lab.dir, 'work', 'run');
      if (CAPS[flavour.mode].spool) assert.deepEqual(readdirSync(join(run, 'spool')), [], 'the spool is empty');
    });

    test('a hostile user name reaches the plugin exactly and nothing in it runs', async (t) => {
      const { h } = await passwordLab(t, flavour);
      const [name, password] = Object.entries(USERS)[2]!;
      const client = await h.lab.startClient({ commonName: 'c-hostile', port: h.port, username: name, password });
      await client.waitConnected();
      const seen = await waitFor('recorded user-pass-verify', () => h.recordsOf('user-pass-verify').find((r) => r.commonName === 'c-hostile'));
      assert.equal(seen.username, name);
      for (const m of MARKS) assert.equal(existsSync(m), false, `${m} was created: something ran`);
      assert.deepEqual(filesWithPasswords(h.lab.dir), []);
    });
  });
}

describe('password-auth, users file changes', { skip: isRoot ? false : 'needs root' }, () => {
  test('a user added by flexscript passwd gets in without a restart; a bad edit keeps the previous users', async (t) => {
    const { h, usersFile } = await passwordLab(t, { mode: 'management' });
    const add = spawnSync(process.execPath, [FLEXSCRIPT, 'passwd', 'dave', '--file', usersFile], { input: 'Dave-Pa55-e2e\n', encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    const dave = await h.lab.startClient({ commonName: 'c-dave', port: h.port, username: 'dave', password: 'Dave-Pa55-e2e' });
    await dave.waitConnected();
    await h.daemon.waitForLog('reload', (l) => l.msg === 'users file reloaded' && l.users === 5);

    writeFileSync(usersFile, `${readFileSync(usersFile, 'utf8')}erin:plain-text-oops\n`);
    const alice = await h.lab.startClient({ commonName: 'c-alice', port: h.port, username: 'alice', password: USERS.alice });
    await alice.waitConnected();
    const bad = await h.daemon.waitForLog('bad users file', (l) => l.msg === 'users file not reloaded; the previous version stays in use');
    assert.match(String(bad.err), /users:7: user "erin": unsupported hash/);
    assert.doesNotMatch(String(bad.err), /plain-text-oops/);
  });
});

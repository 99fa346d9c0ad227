/**
 * A username is the client's own claim until a plugin that verifies usernames accepted it.
 * Through real OpenVPN, in both modes: a certificate `guest-17` that sends the username
 * `carol` gets neither carol's client config nor her group's, and a guest that sends the
 * username `alice` does not push the real alice out under a session limit. With password-auth
 * in the pipeline the same username, verified, does count: carol's config and group, and a
 * limit per username.
 *
 * Hook mode: OpenVPN hands a username to the hooks only when it asks for one, so the server
 * runs the user-pass-verify hook (with `auth-user-pass-optional`, certificate-only clients get
 * in too); in the first test no plugin there verifies usernames (the recorder only records).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/util/password-hash.ts';
import { decisionOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { MODES, modeLab, type Mode } from '../e2e/mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const CAROL_ROUTE = 'route 10.231.1.0 255.255.255.0';
const STAFF_ROUTE = 'route 10.231.2.0 255.255.255.0';
const PASSWORDS = { alice: 'Alice-Id-Pa55', carol: 'Carol-Id-Pa55' };

async function identityLab(t: TestContext, mode: Mode, o: { passwordAuth: boolean }) {
  // the store and the users file: outside the lab, readable by the daemon (nobody)
  const dir = mkdtempSync(join(tmpdir(), 'fxs-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  chownSync(dir, RUN_AS.uid, RUN_AS.gid);
  const db = join(dir, 'accounting.db');
  const usersFile = join(dir, 'users');
  writeFileSync(usersFile, `${(await Promise.all(Object.entries(PASSWORDS).map(async ([u, p]) => `${u}:${await hashPassword(p)}`))).join('\n')}\n`, {
    mode: 0o640,
  });
  chownSync(usersFile, 0, RUN_AS.gid);
  const h = await modeLab(t, mode, {
    // management mode asks for passwords only with password-auth; hook mode asks through the
    // user-pass-verify hook, optional for certificate-only clients unless passwords are checked
    passwords: o.passwordAuth,
    events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
    extraServer: mode === 'hook' && !o.passwordAuth ? ['auth-user-pass-optional'] : [],
    extraConfig: ['store:', `  sqlite: ${db}`],
    plugins: [
      ...(o.passwordAuth ? ['  - use: password-auth', '    options:', `      file: ${usersFile}`] : []),
      '  - use: session-limit',
      '    options: { max: 1, on-exceed: disconnect-oldest }',
      '  - use: client-config',
      '    options:',
      '      match: username',
      '      groups:',
      '        staff:',
      '          members: { usernames: [carol] }',
      `          push: ["${STAFF_ROUTE}"]`,
      '      users:',
      `        carol: { push: ["${CAROL_ROUTE}"] }`,
    ],
    pluginsAfter: ['  - use: accounting'],
  });
  const open = async () => {
    const store = new SqliteStore(db);
    try {
      return (await store.sessions({ openOnly: true })).map((r) => ({ commonName: r.commonName, username: r.username, endReason: r.endReason }));
    } finally {
      await store.close();
    }
  };
  const client = (commonName: string, username?: string) =>
    h.lab.startClient({
      commonName,
      port: h.port,
      ...(username === undefined ? {} : { username, password: PASSWORDS[username as keyof typeof PASSWORDS] ?? 'anything' }),
      extraConfig: ['explicit-exit-notify 1'],
    });
  return { h, open, client };
}

for (const mode of MODES) {
  describe(`identity: an unverified username, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('guest-17 sending username carol gets neither her config nor her group, and the log calls it a claim; a guest sending alice leaves the real alice connected', async (t) => {
      const { h, open, client } = await identityLab(t, mode, { passwordAuth: false });
      const guest = await client('guest-17', 'carol');
      await guest.waitConnected();
      const reply = guest.pushReply() ?? '';
      assert.ok(!reply.includes(CAROL_ROUTE), `carol's own config reached guest-17: ${reply}`);
      assert.ok(!reply.includes(STAFF_ROUTE), `guest-17 joined carol's group: ${reply}`);
      const seen = await h.daemon.waitForEvent('the guest connected', decisionOf({ event: 'client-connect', commonName: 'guest-17', verdict: 'accept' }));
      assert.equal(seen.data.username, undefined);
      assert.equal(seen.data.claimedUsername, 'carol', 'the claim is reported as a claim');
      // for the operator: the log line names the claim as a claim, never as the username
      const logged = await h.daemon.waitForLog('the guest in the log', (l) => l.msg === 'client-connect' && l.commonName === 'guest-17');
      assert.equal(logged.username, undefined);
      assert.equal(logged.claimedUsername, 'carol', 'the claim is logged as a claim');

      // the real alice (her certificate), then a guest that sends the username alice
      const alice = await client('alice');
      await alice.waitConnected();
      const impostor = await client('guest-18', 'alice');
      // with the claim as identity: management mode halted alice, hook mode refused the guest
      await impostor.waitConnected();
      const records = await waitFor('three open records', async () => ((await open()).length === 3 ? open() : undefined));
      assert.deepEqual(
        records.map((r) => [r.commonName, r.username, r.endReason]).sort(),
        [
          ['alice', undefined, undefined],
          ['guest-17', undefined, undefined],
          ['guest-18', undefined, undefined],
        ],
        'nobody was marked for a kill, and no record holds a claimed username',
      );
      // the limit was not hit: where the oldest session can be disconnected it would have been,
      // elsewhere the newer client would have been refused (session-limit denies it)
      const denies = h.daemon.events().filter(decisionOf({ verdict: 'deny' }));
      assert.deepEqual(denies, [], 'nobody was denied');
      // a kill is sent before guest-18 is answered; alice would have heard of it by the time
      // guest-18 and guest-17 have left
      await Promise.all([impostor.stop(), guest.stop()]);
      for (const commonName of ['guest-18', 'guest-17'])
        await h.daemon.waitForEvent(`${commonName} left`, decisionOf({ event: 'client-disconnect', commonName }));
      assert.equal(alice.log().includes('replaced this one'), false, 'alice stays');
      assert.ok(!h.daemon.events().some(decisionOf({ event: 'client-disconnect', commonName: 'alice' })), 'alice did not leave');
    });

    test('with password-auth the verified username counts: carol gets her config and group, a second alice is over the limit', async (t) => {
      const { h, open, client } = await identityLab(t, mode, { passwordAuth: true });
      const guest = await client('guest-17', 'carol');
      await guest.waitConnected();
      const reply = guest.pushReply() ?? '';
      assert.ok(reply.includes(CAROL_ROUTE), `carol's config: ${reply}`);
      assert.ok(reply.includes(STAFF_ROUTE), `carol's group: ${reply}`);

      const laptop = await client('alice-laptop', 'alice');
      await laptop.waitConnected();
      const phone = await client('alice-phone', 'alice');
      if (h.caps.killClient) {
        // the newer session of username alice replaces the older one
        await phone.waitConnected();
        await waitFor('the laptop halted', () => laptop.log().includes('a newer session of this user replaced this one'), { timeoutMs: 30_000 });
      } else {
        // where the older one cannot be disconnected, the newer is refused
        await phone.waitAuthFailed();
        const refused = await h.daemon.waitForEvent('the phone refused', decisionOf({ event: 'client-connect', commonName: 'alice-phone', verdict: 'deny' }));
        assert.equal(refused.data.plugin, 'session-limit');
        assert.equal(
          refused.data.reason,
          'session-limit: "alice" has 1 session(s) open, at most 1 allowed, and the oldest cannot be disconnected here: ' +
            'cannot disconnect a client of e2e: it is not served through the management interface',
        );
      }
      const records = await waitFor('the records settle', async () => {
        const r = await open();
        return r.some((s) => s.commonName === 'alice-laptop') === !h.caps.killClient && r.length === 2 ? r : undefined;
      });
      assert.deepEqual(records.map((r) => [r.commonName, r.username]).sort(), [
        [h.caps.killClient ? 'alice-phone' : 'alice-laptop', 'alice'],
        ['guest-17', 'carol'],
      ]);
    });
  });
}

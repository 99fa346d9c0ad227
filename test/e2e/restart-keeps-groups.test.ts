/**
 * A daemon restart with clients connected keeps what their sign-in gave them: a client rebuilt
 * from OpenVPN's list takes back, from its own open session record, the username the daemon
 * verified and the groups its authentication gave. Without that, the first reconcile after the
 * restart would move every directory- or users-file-group member to the default group's set,
 * cutting its access until it reconnects. Real OpenVPN, the root stage and nft in a network
 * namespace, both modes. A re-authentication (a TLS renegotiation) that gives a live client other
 * groups moves its address between the sets at once, and its record follows.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { ControlSession } from '../../src/daemon/control-socket.ts';
import { FLEXSCRIPT, lifecycleOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { netnsLab, passwordFirewallOptions, pushedAddress, setsBecome } from '../support/netns-lab.ts';
import { MODES } from './mode-lab.ts';

const skip = process.getuid?.() === 0 ? false : 'needs root';
const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

/**
 * A folder the daemon's user may write (its store, the users file), removed after the test; the
 * lab's options: password-auth from that users file, the firewall by its groups, accounting.
 */
async function groupsLab(t: TestContext, groups: Readonly<Record<string, readonly string[]>>) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-restart-groups-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await chown(dir, RUN_AS.uid, RUN_AS.gid);
  const usersFile = join(dir, 'users');
  const options = passwordFirewallOptions(usersFile, groups, ['  - use: accounting']);
  return {
    options: { ...options, extraConfig: ['store:', `  sqlite: ${join(dir, 'accounting.db')}`] },
    /** Writes the users file (`user:password:groups` lines), readable by the daemon's group. */
    async users(lines: readonly (readonly [user: string, password: string, groups?: string])[]) {
      const text = await Promise.all(lines.map(async ([user, password, groups]) => `${user}:${await hashPassword(password)}${groups ? `:${groups}` : ''}\n`));
      await writeFile(usersFile, text.join(''), { mode: 0o640 });
      await chown(usersFile, 0, RUN_AS.gid);
    },
  };
}

for (const mode of MODES) {
  describe(`daemon restart, ${mode} mode`, { skip }, () => {
    test("a rebuilt client keeps its verified username and its sign-in's groups: its address stays in the group's set", async (t) => {
      const lab = await groupsLab(t, { staff: ['vpn-staff'] });
      await lab.users([
        ['alice', 'Alice-Pa55', 'vpn-staff'],
        ['bob', 'Bob-Pa55'],
      ]);
      const n = await netnsLab(t, mode, { ...lab.options, control: true, statusFile: true });
      const start = async (commonName: string, username: string, password: string) => {
        const client = await n.h.lab.startClient({ commonName, port: n.h.port, username, password });
        await client.waitConnected();
        return pushedAddress(client.pushReply());
      };
      const want = { staff: [await start('c-alice', 'alice', 'Alice-Pa55')], guests: [await start('c-bob', 'bob', 'Bob-Pa55')] };
      let sets: Record<string, string[]> = {};
      const setsAre = async () => {
        sets = { staff: await n.setElements('staff'), guests: await n.setElements('guests') };
        return JSON.stringify(sets) === JSON.stringify(want);
      };
      await waitFor('alice in staff (her users-file group), bob in guests', setsAre, { timeoutMs: 60_000, intervalMs: 200 });
      // hook mode: the restarted daemon reads the live clients from OpenVPN's status file, rewritten every second
      if (existsSync(n.statusFile))
        await waitFor('both in the status file', () => (readFileSync(n.statusFile, 'utf8').match(/^CLIENT_LIST\t/gm) ?? []).length === 2);

      const daemon = await n.h.restartDaemon();
      // the first reconcile after the restart sets the kernel from the rebuilt sessions
      await daemon.waitForEvent('the first reconcile after the restart', lifecycleOf('kernel-reconciled'), 60_000);
      assert.ok(await setsAre(), `after the restart the sets are ${JSON.stringify(sets)}, want ${JSON.stringify(want)}`);
      const rows = await waitFor('both rebuilt', () => {
        const out = flexscript('status', '--config', n.h.configPath, '--json');
        const listed = out.status === 0 ? (JSON.parse(out.stdout) as ControlSession[]) : [];
        return listed.length === 2 && listed;
      });
      const alice = rows.find((r) => r.commonName === 'c-alice');
      assert.equal(alice?.username, 'alice', 'the username her record shows the daemon verified');
      assert.deepEqual(alice?.groups, ['vpn-staff']);
      assert.deepEqual(rows.find((r) => r.commonName === 'c-bob')?.groups ?? [], []);
    });

    test('a re-authentication that gives a live client other groups, or none, moves its address to their sets, and its record follows', async (t) => {
      const lab = await groupsLab(t, { staff: ['vpn-staff'], ops: ['vpn-ops'] });
      await lab.users([['alice', 'Alice-Pa55', 'vpn-staff']]);
      const n = await netnsLab(t, mode, lab.options);
      // the client renegotiates its TLS session every few seconds, sending its password again
      const client = await n.h.lab.startClient({
        commonName: 'c-alice',
        port: n.h.port,
        username: 'alice',
        password: 'Alice-Pa55',
        extraConfig: ['reneg-sec 6'],
      });
      await client.waitConnected();
      const address = pushedAddress(client.pushReply());
      await setsBecome(n, { staff: [address], ops: [], guests: [] }, 'alice in staff');
      // the users file now puts her in vpn-ops; password-auth reads it again
      await lab.users([['alice', 'Alice-Pa55', 'vpn-ops']]);
      await setsBecome(n, { staff: [], ops: [address], guests: [] }, 'alice moved to ops at her next re-authentication', 90_000);
      const open = await waitFor('her record shows vpn-ops', () => {
        const out = flexscript('sessions', '--config', n.h.configPath, '--json', '--open');
        const listed = out.status === 0 ? (JSON.parse(out.stdout) as { commonName: string; groups?: string[] }[]) : [];
        const mine = listed.find((r) => r.commonName === 'c-alice');
        return mine?.groups?.includes('vpn-ops') && mine;
      });
      assert.deepEqual(open.groups, ['vpn-ops']);
      // her line now names no group (as a directory user removed from every group): she loses ops
      await lab.users([['alice', 'Alice-Pa55']]);
      await setsBecome(n, { staff: [], ops: [], guests: [address] }, 'alice in the default group after the next re-authentication', 90_000);
      assert.ok(client.log().includes('Initialization Sequence Completed'), 'the client stayed connected throughout');
    });
  });
}

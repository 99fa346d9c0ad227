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
import { describe, test } from 'node:test';
import type { ControlSession } from '../../src/daemon/control-socket.ts';
import { FLEXSCRIPT, lifecycleOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { netnsLab, pushedAddress } from '../support/netns-lab.ts';
import { MODES } from './mode-lab.ts';

const skip = process.getuid?.() === 0 ? false : 'needs root';
const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

for (const mode of MODES) {
  describe(`daemon restart, ${mode} mode`, { skip }, () => {
    test("a rebuilt client keeps its verified username and its sign-in's groups: its address stays in the group's set", async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'fxs-restart-groups-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      await chown(dir, RUN_AS.uid, RUN_AS.gid);
      const usersFile = join(dir, 'users');
      await writeFile(usersFile, `alice:${await hashPassword('Alice-Pa55')}:vpn-staff\nbob:${await hashPassword('Bob-Pa55')}\n`, { mode: 0o640 });
      await chown(usersFile, 0, RUN_AS.gid);
      const n = await netnsLab(t, mode, {
        passwords: true,
        events: ['user-pass-verify', 'client-connect', 'client-disconnect', 'learn-address'],
        pluginTimeout: '10s',
        control: true,
        statusFile: true,
        extraConfig: ['store:', `  sqlite: ${join(dir, 'accounting.db')}`],
        plugins: [
          '  - use: password-auth',
          `    options: { file: ${usersFile} }`,
          '  - use: firewall',
          '    options:',
          '      groups:',
          '        staff: { groups: [vpn-staff] }',
          '        guests: {}',
          '      default-group: guests',
          '  - use: accounting',
        ],
      });
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
      const dir = await mkdtemp(join(tmpdir(), 'fxs-reauth-groups-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      await chown(dir, RUN_AS.uid, RUN_AS.gid);
      const usersFile = join(dir, 'users');
      const users = async (aliceGroups: string) => {
        await writeFile(usersFile, `alice:${await hashPassword('Alice-Pa55')}${aliceGroups ? `:${aliceGroups}` : ''}\n`, { mode: 0o640 });
        await chown(usersFile, 0, RUN_AS.gid);
      };
      await users('vpn-staff');
      const n = await netnsLab(t, mode, {
        passwords: true,
        events: ['user-pass-verify', 'client-connect', 'client-disconnect', 'learn-address'],
        pluginTimeout: '10s',
        extraConfig: ['store:', `  sqlite: ${join(dir, 'accounting.db')}`],
        plugins: [
          '  - use: password-auth',
          `    options: { file: ${usersFile} }`,
          '  - use: firewall',
          '    options:',
          '      groups:',
          '        staff: { groups: [vpn-staff] }',
          '        ops: { groups: [vpn-ops] }',
          '        guests: {}',
          '      default-group: guests',
          '  - use: accounting',
        ],
      });
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
      const setsAre = async (want: Record<string, string[]>) =>
        JSON.stringify({ staff: await n.setElements('staff'), ops: await n.setElements('ops'), guests: await n.setElements('guests') }) ===
        JSON.stringify(want);
      await waitFor('alice in staff', () => setsAre({ staff: [address], ops: [], guests: [] }), { timeoutMs: 60_000, intervalMs: 200 });
      // the users file now puts her in vpn-ops; password-auth reads it again
      await users('vpn-ops');
      await waitFor('alice moved to ops at her next re-authentication', () => setsAre({ staff: [], ops: [address], guests: [] }), {
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      const open = await waitFor('her record shows vpn-ops', () => {
        const out = flexscript('sessions', '--config', n.h.configPath, '--json', '--open');
        const listed = out.status === 0 ? (JSON.parse(out.stdout) as { commonName: string; groups?: string[] }[]) : [];
        const mine = listed.find((r) => r.commonName === 'c-alice');
        return mine?.groups?.includes('vpn-ops') && mine;
      });
      assert.deepEqual(open.groups, ['vpn-ops']);
      // her line now names no group (as a directory user removed from every group): she loses ops
      await users('');
      await waitFor('alice in the default group after the next re-authentication', () => setsAre({ staff: [], ops: [], guests: [address] }), {
        timeoutMs: 90_000,
        intervalMs: 250,
      });
      assert.ok(client.log().includes('Initialization Sequence Completed'), 'the client stayed connected throughout');
    });
  });
}

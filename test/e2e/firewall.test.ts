/**
 * The firewall plugin for real, in both modes: OpenVPN and the daemon as nobody inside a
 * network namespace, the root stage through real sudo changing that namespace's nftables.
 * Clients' addresses join their groups' sets on connect and leave on disconnect; a hostile
 * common name is data; the root stage killed in the middle of a burst comes back reconciled.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decisionOf, lifecycleOf } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import type { OpenVpnClient } from '../../src/lab/openvpn-process.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { CAPS, MODES } from './mode-lab.ts';
import { netnsLab, passwordFirewallOptions, pushedAddress, setsBecome, TABLE, type NetnsLab } from '../support/netns-lab.ts';

const isRoot = process.getuid?.() === 0;
const CANARY = '/tmp/fxs-fw-pwned';
const HOSTILE = `x$(touch ${CANARY});nft flush ruleset`;

const FIREWALL = [
  '  - use: firewall',
  '    options:',
  '      groups:',
  '        staff: { common-names: [alice], patterns: ["burst-*"] }',
  '        ops: { patterns: ["*.ops"] }',
  '        guests: {}',
  '      default-group: guests',
];

async function connect(n: NetnsLab, commonName: string): Promise<{ client: OpenVpnClient; address: string; address6?: string }> {
  // explicit-exit-notify: a stopped UDP client tells the server at once
  const client = await n.h.lab.startClient({ commonName, port: n.h.port, extraConfig: ['explicit-exit-notify 1'] });
  await client.waitConnected();
  const address6 = /,ifconfig-ipv6 ([0-9a-f:]+)\//.exec(client.pushReply() ?? '')?.[1];
  return { client, address: pushedAddress(client.pushReply()), address6 };
}

/** How often a root stage reconciled the kernel right after it started. */

for (const mode of MODES) {
  describe(`firewall plugin, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('addresses join their groups on connect and leave on disconnect; a hostile name is data', async (t) => {
      const n = await netnsLab(t, mode, {
        plugins: FIREWALL,
        events: ['client-connect', 'client-disconnect', 'learn-address', 'down'],
        extraServer: ['server-ipv6 fd00:e2e::/64'],
      });
      const alice = await connect(n, 'alice');
      const bob = await connect(n, 'bob.ops');
      const evil = await connect(n, HOSTILE);
      await setsBecome(n, { staff: [alice.address], ops: [bob.address], guests: [evil.address] }, 'each address in its group');
      // the IPv6 address joins the group's IPv6 set
      assert.ok(alice.address6, 'alice was pushed an IPv6 address');
      await waitFor('alice in staff v6', async () => JSON.stringify(await n.setElements('staff', 6)) === JSON.stringify([alice.address6]));
      assert.equal(existsSync(CANARY), false, 'nothing of the hostile name ran');
      const ruleset = await n.ruleset();
      assert.match(ruleset, new RegExp(`"table": "${TABLE}"`), 'the table is still there');
      assert.match(ruleset, /"drop": null/, 'the chain still drops what no group allows');

      await alice.client.stop();
      await setsBecome(n, { staff: [], ops: [bob.address], guests: [evil.address] }, 'alice left staff');
      await waitFor('alice left staff v6', async () => (await n.setElements('staff', 6)).length === 0);

      if (CAPS[mode].downEvent) {
        // OpenVPN's down runs after its privilege drop; the root stage still cleans up
        await n.h.server.stop();
        await n.h.daemon.waitForEvent('down handled', decisionOf({ event: 'down' }));
        await setsBecome(n, { staff: [], ops: [], guests: [] }, 'every set empty after down');
      }
    });

    test('a user whose users-file line gives group vpn-admins joins the set of the firewall group mapped from it; a user without it does not', async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'fxs-fw-groups-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      await chmod(dir, 0o755);
      const usersFile = join(dir, 'users');
      await writeFile(usersFile, `kim:${await hashPassword('Kim-Pa55')}:vpn-admins\nlou:${await hashPassword('Lou-Pa55')}:Vpn-Admins\n`, { mode: 0o640 });
      await chown(usersFile, 65534, 65534);
      const n = await netnsLab(t, mode, passwordFirewallOptions(usersFile, { staff: ['vpn-admins'] }));
      const start = async (commonName: string, username: string, password: string) => {
        const client = await n.h.lab.startClient({ commonName, port: n.h.port, username, password, extraConfig: ['explicit-exit-notify 1'] });
        await client.waitConnected();
        return { client, address: pushedAddress(client.pushReply()) };
      };
      const kim = await start('kim-laptop', 'kim', 'Kim-Pa55');
      // another spelling of the group: no member
      const lou = await start('lou-laptop', 'lou', 'Lou-Pa55');
      await setsBecome(n, { staff: [kim.address], guests: [lou.address] }, "kim's address in staff through her group, lou's in guests");
      await kim.client.stop();
      await setsBecome(n, { staff: [], guests: [lou.address] }, 'kim left staff');
    });

    if (CAPS[mode].learnAtConnect) {
      test('learn-address: connect runs no learn-address hook; addresses join at the accepted connect and leave at the disconnect', async (t) => {
        const n = await netnsLab(t, mode, { plugins: FIREWALL, learnAtConnect: true, extraServer: ['server-ipv6 fd00:e2e::/64'] });
        assert.doesNotMatch(readFileSync(n.h.server.configPath, 'utf8'), /^learn-address /m, 'OpenVPN runs no learn-address hook');
        const alice = await connect(n, 'alice');
        const bob = await connect(n, 'bob.ops');
        await setsBecome(n, { staff: [alice.address], ops: [bob.address] }, 'each address in its group');
        assert.ok(alice.address6, 'alice was pushed an IPv6 address');
        await waitFor('alice in staff v6', async () => JSON.stringify(await n.setElements('staff', 6)) === JSON.stringify([alice.address6]));
        await alice.client.stop();
        await setsBecome(n, { staff: [], ops: [bob.address] }, 'alice left staff');
        await waitFor('alice left staff v6', async () => (await n.setElements('staff', 6)).length === 0);
      });
    }

    test('the root stage killed with -9 in the middle of a burst is restarted and reconciled: no stale or missing element', async (t) => {
      const n = await netnsLab(t, mode, { plugins: FIREWALL });
      const before = await connect(n, 'bob.ops');
      const leaving = await connect(n, 'burst-leaving');
      await setsBecome(n, { staff: [leaving.address], ops: [before.address] }, 'first clients in');
      const [pid] = await n.rootPids();
      assert.ok(pid, 'the root stage runs');

      // a burst of connects and one disconnect, with the root stage killed right in it
      const burst = Array.from({ length: 8 }, (_, i) =>
        n.h.lab.startClient({ commonName: `burst-${i}`, port: n.h.port, extraConfig: ['explicit-exit-notify 1'] }),
      );
      const stopping = leaving.client.stop();
      const beforeKill = n.h.daemon.events().length;
      process.kill(pid, 'SIGKILL');
      const clients = await Promise.all(burst);
      await Promise.all(clients.map((c) => c.waitConnected()));
      await stopping;
      const addresses = clients.map((c) => pushedAddress(c.pushReply()));
      await setsBecome(n, { staff: addresses, ops: [before.address], guests: [] }, 'sets equal the live clients after the restart');
      await waitFor('a new root stage', async () => (await n.rootPids()).some((p) => p !== pid));
      // the new stage's first request is the reconcile, and it succeeded
      await waitFor('the restarted stage reconciled', () =>
        n.h.daemon
          .events()
          .slice(beforeKill)
          .some((e) => e.channel === 'root-action' && e.data.action === 'reconcile' && e.data.code === undefined),
      );
    });

    test(`a restarted daemon rebuilds its sessions (${mode === 'hook' ? "from OpenVPN's status file" : 'from status 3'}) and leaves the sets right`, async (t) => {
      const n = await netnsLab(t, mode, { plugins: FIREWALL, statusFile: mode === 'hook' });
      const alice = await connect(n, 'alice');
      const bob = await connect(n, 'bob.ops');
      await setsBecome(n, { staff: [alice.address], ops: [bob.address] }, 'both in');
      if (mode === 'hook') {
        // OpenVPN rewrites its status file every few seconds
        await waitFor(
          'both in the status file',
          () =>
            existsSync(n.statusFile) &&
            /CLIENT_LIST\talice[\s\S]*CLIENT_LIST\tbob\.ops|CLIENT_LIST\tbob\.ops[\s\S]*CLIENT_LIST\talice/.test(readFileSync(n.statusFile, 'utf8')),
          { timeoutMs: 30_000 },
        );
      }
      await n.h.restartDaemon();
      await n.h.daemon.waitForEvent('reconcile after the rebuild', lifecycleOf('kernel-reconciled'));
      await setsBecome(n, { staff: [alice.address], ops: [bob.address] }, 'still both in after the restart');
      await bob.client.stop();
      await setsBecome(n, { staff: [alice.address], ops: [] }, 'bob left after the restart');
    });
  });
}

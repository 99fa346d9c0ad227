/**
 * The client-config plugin through real OpenVPN, in both modes: a user gets its static address
 * (the client's PUSH_REPLY and learn-address show it, and the daemon's live session and
 * accounting record hold it, not the pool address of the connect) and its group's route and
 * DNS; a client without an entry is denied when the config is exclusive.
 */
import assert from 'node:assert/strict';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { decisionOf } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { MODES, modeLab } from './mode-lab.ts';

/** The VPN address of each accounting record, by common name. */
function recordedAddresses(file: string): Map<string, string | null> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT common_name, vpn_address FROM sessions').all() as { common_name: string; vpn_address: string | null }[];
    return new Map(rows.map((r) => [r.common_name, r.vpn_address]));
  } finally {
    db.close();
  }
}

const isRoot = process.getuid?.() === 0;
let serial = 0;

for (const mode of MODES) {
  describe(`client-config plugin, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('static address, group route and DNS; a client without entry is denied (exclusive)', async (t) => {
      // a network of our own, with room outside the pool for static addresses
      const net = `10.${140 + (process.pid % 50)}.${(serial++ + process.pid) % 250}`;
      // a folder the daemon (nobody) can write its accounting database into
      const dir = await mkdtemp(join(tmpdir(), 'fxs-client-config-'));
      await chown(dir, 65534, 65534);
      t.after(() => rm(dir, { recursive: true, force: true }));
      const db = join(dir, 'accounting.db');
      const h = await modeLab(t, mode, {
        extraServer: [`server ${net}.0 255.255.255.0 nopool`, `ifconfig-pool ${net}.100 ${net}.200`],
        extraConfig: ['store:', `  sqlite: ${db}`],
        pluginsAfter: ['  - use: accounting'],
        plugins: [
          '  - use: client-config',
          '    options:',
          `      network: ${net}.0/24`,
          `      pool: ${net}.100-${net}.200`,
          '      exclusive: true',
          '      groups:',
          '        staff:',
          '          members: { patterns: ["*.staff"] }',
          '          push: ["route 10.231.0.0 255.255.0.0", "dhcp-option DNS 10.231.0.53"]',
          '      users:',
          `        alice.staff: { address: ${net}.10 }`,
        ],
      });
      const alice = await h.lab.startClient({ commonName: 'alice.staff', port: h.port });
      const bob = await h.lab.startClient({ commonName: 'bob.staff', port: h.port });
      const mallory = await h.lab.startClient({ commonName: 'mallory', port: h.port });
      await Promise.all([alice.waitConnected(), bob.waitConnected(), mallory.waitAuthFailed()]);
      const reply = alice.pushReply() ?? '';
      assert.match(reply, new RegExp(`ifconfig ${net.replace(/\./g, '\\.')}\\.10 255\\.255\\.255\\.0`));
      assert.match(reply, /route 10\.231\.0\.0 255\.255\.0\.0/);
      assert.match(reply, /dhcp-option DNS 10\.231\.0\.53/);
      const bobAddress = /ifconfig (\S+) /.exec(bob.pushReply() ?? '')?.[1] ?? '';
      assert.ok(Number(bobAddress.split('.')[3]) >= 100, `bob from the pool: ${bobAddress}`);
      assert.match(bob.pushReply() ?? '', /route 10\.231\.0\.0 255\.255\.0\.0/);
      const learned = await waitFor('learn-address of alice', () => h.recordsOf('learn-address').find((r) => r.commonName === 'alice.staff'));
      assert.equal(learned.address, `${net}.10`);
      // the daemon knows the static address as alice's: plugins get her session for it
      assert.equal(learned.sessionKnown, true, 'learn-address of the static address found no session');
      let recorded: string | null | undefined;
      await waitFor('the static address in the accounting record', () => (recorded = recordedAddresses(db).get('alice.staff')) === `${net}.10`, {
        timeoutMs: 10_000,
      }).catch(() => {
        assert.fail(`alice's accounting record holds ${recorded}, not her static address ${net}.10`);
      });
      assert.ok(Number(recordedAddresses(db).get('bob.staff')?.split('.')[3]) >= 100, 'bob is recorded with his pool address');
      const deny = await h.daemon.waitForEvent('exclusive deny', decisionOf({ event: 'client-connect', verdict: 'deny', commonName: 'mallory' }));
      assert.equal(deny.data.plugin, 'client-config');
    });
  });
}

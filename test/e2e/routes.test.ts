/**
 * The routes plugin for real, in both modes: a client with a network behind it gets its iroute
 * in OpenVPN, and the kernel route into OpenVPN's tun device appears in the namespace through
 * the root stage; both go when the client disconnects.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { MODES } from './mode-lab.ts';
import { netnsLab } from '../support/netns-lab.ts';

const isRoot = process.getuid?.() === 0;

const ROUTES = ['  - use: routes', '    options:', '      clients:', '        branch-1: [10.200.1.0/24, 10.200.2.0/24]'];

for (const mode of MODES) {
  describe(`routes plugin, ${mode} mode`, { skip: isRoot ? false : 'needs root' }, () => {
    test('a network behind a client gets its iroute and kernel route, both removed at disconnect', async (t) => {
      const n = await netnsLab(t, mode, { plugins: ROUTES });
      const other = await n.h.lab.startClient({ commonName: 'roadwarrior', port: n.h.port });
      await other.waitConnected();
      const branch = await n.h.lab.startClient({ commonName: 'branch-1', port: n.h.port, extraConfig: ['explicit-exit-notify 1'] });
      await branch.waitConnected();
      const routes = await waitFor('kernel routes', async () => {
        const r = await n.routes();
        return r.length === 2 ? r : undefined;
      });
      assert.deepEqual(routes.map((r) => [r.dst, r.dev]).sort(), [
        ['10.200.1.0/24', n.dev],
        ['10.200.2.0/24', n.dev],
      ]);
      // OpenVPN took the iroutes: it logs the internal routes to this client
      await n.h.server.waitForLog(/MULTI: internal route 10\.200\.1\.0\/24 -> branch-1/);
      await n.h.server.waitForLog(/MULTI: internal route 10\.200\.2\.0\/24 -> branch-1/);
      assert.doesNotMatch(n.h.server.log(), /internal route [^\n]* -> roadwarrior/);

      await branch.stop();
      await waitFor('kernel routes removed', async () => (await n.routes()).length === 0);
    });
  });
}

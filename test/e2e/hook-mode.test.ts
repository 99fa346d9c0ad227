/**
 * What only hook mode has: fail-closed when the daemon is down, OpenVPN's deferral races, and
 * tls-verify (which has no management equivalent). The shared scenarios are in conformance.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HOOK } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { modeLab } from './mode-lab.ts';

test('with the daemon stopped a connecting client is denied and OpenVPN keeps serving', async (t) => {
  const h = await modeLab(t, 'hook');
  const first = await h.lab.startClient({ commonName: 'gina', port: h.port });
  await first.waitConnected();
  await h.daemon.stop();
  const denied = await h.lab.startClient({ commonName: 'hank', port: h.port });
  await denied.waitAuthFailed();
  await h.server.waitForLog(/flexscript-hook\[client-connect\]: daemon not running .*; denying \(on-unreachable: deny\)/);
  await h.restartDaemon();
  const after = await h.lab.startClient({ commonName: 'ivy', port: h.port });
  await after.waitConnected();
  assert.match(after.pushReply() ?? '', /route 10\.200\./);
});

test('answers that arrive before the hook has exited are still right, denials included', async (t) => {
  // A hook that lingers after handing over: the daemon's answer is then always in the deferred
  // file before OpenVPN looks at it, which OpenVPN treats as an immediate (non-deferred) result.
  const h = await modeLab(t, 'hook', {
    hookPath: (dir) => {
      const path = join(dir, 'slow-hook');
      writeFileSync(path, `#!/bin/sh\n${HOOK} "$@"\nrc=$?\nsleep 1\nexit $rc\n`, { mode: 0o755 });
      return path;
    },
  });
  const [good, bad] = await Promise.all([
    h.lab.startClient({ commonName: 'quick', port: h.port }),
    h.lab.startClient({ commonName: 'deny-quick', port: h.port }),
  ]);
  await good.waitConnected();
  assert.match(good.pushReply() ?? '', new RegExp(routeFor('quick').replace(/\./g, '\\.')));
  await bad.waitAuthFailed();
  await h.server.waitForLog(/deny-quick.*rejected due to 'disable' directive/);
});

test('tls-verify waits for the daemon and its deny refuses the client', async (t) => {
  const h = await modeLab(t, 'hook', { events: ['tls-verify', 'client-connect', 'client-disconnect'] });
  const refused = await h.lab.startClient({ commonName: 'tlsdeny-zed', port: h.port });
  const fine = await h.lab.startClient({ commonName: 'yolanda', port: h.port });
  await fine.waitConnected();
  await waitFor('tls-verify deny logged', () => h.daemon.logs().find((l) => l.msg === 'tls-verify denied' && l.commonName === 'tlsdeny-zed'));
  await h.server.waitForLog(/VERIFY SCRIPT ERROR: depth=0, CN=tlsdeny-zed/);
  assert.ok(!refused.log().includes('Initialization Sequence Completed'));
  const depths = h
    .recordsOf('tls-verify')
    .filter((r) => r.commonName === 'yolanda')
    .map((r) => r.depth);
  assert.deepEqual(depths, [0], 'the client certificate is checked at depth 0 (the CA at depth 1 has its own CN)');
});

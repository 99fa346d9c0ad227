/**
 * What only hook mode has: OpenVPN's deferral races. The shared scenarios (fail-closed when the
 * daemon is down, tls-verify, OpenVPN crashing) are in conformance.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decisionOf, HOOK } from '../../src/lab/daemon-process.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { modeLab } from './mode-lab.ts';

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
  const denied = await h.daemon.waitForEvent('the deny', decisionOf({ event: 'client-connect', commonName: 'deny-quick', verdict: 'deny' }));
  assert.equal(denied.data.reason, 'recorder refuses deny-quick');
});

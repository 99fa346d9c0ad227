/**
 * What the daemon does is observable without reading its log: through real OpenVPN, a connect
 * and a deny arrive as events on the control socket's watch, for the lab's handle and for
 * `flexscript watch` as an operator runs it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { decisionOf, FLEXSCRIPT, REPO } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { MODES, modeLab } from './mode-lab.ts';

const DENY_LIST = join(REPO, 'examples/plugins/deny-list.ts');
/** A name that would forge a line of its own if the feed wrote it raw. */
const HOSTILE = 'mallory"}\\n{"channel":"lifecycle"';

for (const mode of MODES) {
  test(`${mode} mode: a connect and a deny arrive as events, in the lab's watch and in flexscript watch`, async (t) => {
    const h = await modeLab(t, mode, {
      plugins: [`  - path: ${DENY_LIST}`, '    options:', `      names: [${JSON.stringify(HOSTILE)}]`, '      message: reported lost'],
    });
    assert.ok(h.daemon.controlSocket, 'the lab watches the daemon');

    const cli = spawn(process.execPath, [FLEXSCRIPT, 'watch', '--config', h.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => cli.kill());
    let out = '';
    let err = '';
    cli.stdout.on('data', (d) => (out += d));
    cli.stderr.on('data', (d) => (err += d));
    await waitFor('flexscript watch to be watching', () => err.includes('watching the daemon') || (cli.exitCode !== null && assert.fail(err)), {
      timeoutMs: 30_000,
    });

    const [alice, mallory] = await Promise.all(['alice', HOSTILE].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
    await alice!.waitConnected();
    await mallory!.waitAuthFailed();

    const accepted = await h.daemon.waitForEvent('alice accepted', decisionOf({ event: 'client-connect', commonName: 'alice', verdict: 'accept' }));
    assert.equal(accepted.data.instance, 'e2e');
    assert.equal(accepted.data.source, mode);
    // her address as OpenVPN learns it (management mode's CONNECT has none yet)
    const pushed = /ifconfig (\S+) /.exec(alice!.pushReply() ?? '')?.[1];
    await h.daemon.waitForEvent('alice learned', decisionOf({ event: 'learn-address', operation: 'add', address: pushed, commonName: 'alice' }));
    assert.equal(typeof accepted.data.ms, 'number');

    const denied = await h.daemon.waitForEvent('mallory denied', decisionOf({ event: 'client-connect', commonName: HOSTILE, verdict: 'deny' }));
    assert.equal(denied.data.plugin, 'deny-list');
    assert.equal(denied.data.reason, `${HOSTILE} is on the deny list`);
    const calls = h.daemon.events().filter((e) => e.channel === 'plugin-call' && e.data.plugin === 'deny-list');
    assert.ok(
      calls.some((e) => e.channel === 'plugin-call' && e.data.outcome === 'deny'),
      'the deciding call is there too',
    );
    assert.ok(!h.daemon.events().some((e) => e.channel === 'lifecycle' && e.data.what === 'stopping'), 'the hostile name forged no line');

    await waitFor('both in flexscript watch', () => /event +client-connect e2e "alice" from 127\.0\.0\.1:\d+ .*accept/.test(out) && out.includes('deny-list'), {
      timeoutMs: 30_000,
    });
    assert.ok(out.includes(`"mallory\\"}\\\\n{\\"channel\\":\\"lifecycle\\"" from 127.0.0.1:`), out);
    assert.ok(out.includes(`deny: by deny-list: ${HOSTILE} is on the deny list`), out);
  });
}

/**
 * Management command injection through text a client chooses. OpenVPN reads a management
 * command into 1024 bytes and runs the rest of a longer line as a new command; one quoted
 * argument over 255 bytes makes it refuse the whole command. A username goes into deny reasons,
 * so a long username that ends in spaces and a command must reach OpenVPN as data only, and a
 * long reason must still deny the client at once. Through real OpenVPN 2.6 in management mode.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { modeLab } from '../e2e/mode-lab.ts';

const PASSWORD = 'right-Pa55';
/** ~1.1 KB: the deny line passes OpenVPN's 1024 bytes inside the spaces, so the tail would be a command of its own. */
const carrying = (command: string) => `inj${'A'.repeat(480)}${' '.repeat(600)}${command}`;

test('a username that carries a management command past 1024 bytes is denied as data: no command runs, OpenVPN keeps serving', async (t) => {
  const h = await modeLab(t, 'management', { passwords: true, recorder: [`password: ${PASSWORD}`] });
  const echo = await h.lab.startClient({ commonName: 'mallory-echo', port: h.port, username: carrying('echo on ;'), password: 'wrong' });
  await echo.waitAuthFailed(30_000);
  const term = await h.lab.startClient({ commonName: 'mallory-term', port: h.port, username: carrying('signal SIGTERM ;'), password: 'wrong' });
  await term.waitAuthFailed(30_000);
  // both were refused by the daemon, with the username (cut) in OpenVPN's log line
  await waitFor('two denies in the server log', () => (h.server.log().match(/MANAGEMENT: CMD 'client-deny /g) ?? []).length >= 2);
  const log = h.server.log();
  assert.doesNotMatch(log, /MANAGEMENT: CMD ' *(echo|signal)/, 'no injected command reached OpenVPN as a command');
  assert.doesNotMatch(log, /real-time echo notification|SIGTERM\[hard,\] received|signal SIGTERM thrown|process exiting/);
  assert.ok(h.server.running, 'OpenVPN is still running');
  assert.ok(!h.daemon.logs().some((l) => l.msg === 'OpenVPN did not take the answer'), 'OpenVPN took every deny');
  // and it still serves
  const carol = await h.lab.startClient({ commonName: 'carol', port: h.port, username: 'carol', password: PASSWORD });
  await carol.waitConnected();
  assert.ok(h.server.running, 'OpenVPN is still running');
});

test('a deny reason longer than one OpenVPN argument still denies the client at once, not at hand-window', async (t) => {
  const h = await modeLab(t, 'management', { passwords: true, recorder: [`password: ${PASSWORD}`] });
  const started = Date.now();
  // the reason "wrong password for <username>" is over 255 bytes, with multibyte UTF-8 and quotes in it
  const long = await h.lab.startClient({ commonName: 'long-reason', port: h.port, username: `long${'B'.repeat(150)}"\\${'雪'.repeat(60)}`, password: 'wrong' });
  // OpenVPN's hand-window is 60 s: a refused deny would leave the client waiting that long
  await long.waitAuthFailed(25_000);
  assert.ok(Date.now() - started < 25_000);
  await h.server.waitForLog(/MANAGEMENT: CMD 'client-deny /);
  assert.doesNotMatch(h.server.log(), /ERROR: .*too long|Parameter .* is too long/i);
  assert.ok(!h.daemon.logs().some((l) => l.msg === 'OpenVPN did not take the answer'), 'OpenVPN took the deny');
});

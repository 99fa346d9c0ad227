/**
 * Config lines a plugin gives for a client (push, ifconfig-push, ...) go into a client-auth
 * block on the management interface. OpenVPN drops control bytes there silently, so a line
 * `E\u0001ND` would arrive as `END`, close the block, and make the next line a management
 * command. Every control character is refused, with an error that names the plugin.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../../src/lab/daemon-process.ts';
import { createLogger } from '../../src/logger.ts';
import { checkConfigLine, pushLine } from '../../src/util/config-lines.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { parseEvent } from '../../src/events/parse-event.ts';
import { modeLab } from '../e2e/mode-lab.ts';

const CONTROLS = ['\u0000', '\u0001', '\t', '\n', '\u000b', '\r', '\u001b', '\u001f', '\u007f', '\u0080', '\u0085', '\u009b', '\u009f'];

test('a config line with any control character is refused: C0, tab, DEL and C1', () => {
  for (const c of CONTROLS) {
    const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    assert.throws(
      () => checkConfigLine(`E${c}ND`),
      (err: Error & { code?: string }) => err.code === 'FXS_CONFIG_LINE_INVALID' && err.message.includes(code),
      code,
    );
    assert.throws(() => checkConfigLine(`push "route 10.0.0.0${c} 255.0.0.0"`), /control character/);
    assert.throws(() => pushLine(`route 10.0.0.0 255.0.0.0${c}`), /control character/);
  }
  // ordinary text, UTF-8 included, stays acceptable
  assert.equal(checkConfigLine('push "dhcp-option DOMAIN zoë.example"'), 'push "dhcp-option DOMAIN zoë.example"');
  assert.equal(checkConfigLine('ifconfig-push 10.8.0.9 255.255.255.0'), 'ifconfig-push 10.8.0.9 255.255.255.0');
});

test('a plugin that gives a config line with a control character denies that client, and the reason names the plugin', async () => {
  const log = createLogger('silent');
  const pipeline = new Pipeline(
    [
      {
        name: 'sneaky',
        path: '/sneaky.ts',
        timeoutMs: 1000,
        instance: {
          'client-connect': (_e, ctx) => {
            ctx.config('push "route 10.1.0.0 255.255.0.0"');
            ctx.config('E\u0001ND');
            ctx.config('signal SIGTERM');
          },
        },
      },
    ],
    log,
  );
  const event = parseEvent({
    name: 'client-connect',
    instance: 'i',
    source: 'management',
    env: { common_name: 'eve', trusted_ip: '198.51.100.7', trusted_port: '1000' },
  });
  const decision = await pipeline.run(event);
  assert.equal(decision.verdict, 'deny');
  assert.equal(decision.decidedBy, 'sneaky');
  assert.match(decision.reason ?? '', /^plugin sneaky on client-connect: config line contains a control character \(U\+0001\)/);
  assert.deepEqual(decision.config, []);
});

test('through real OpenVPN: a plugin line E\\x01ND is refused, the client is denied, no command runs, OpenVPN keeps serving', async (t) => {
  const h = await modeLab(t, 'management', { plugins: [`  - path: ${join(REPO, 'test/fixtures/plugins/hostile-config.ts')}`] });
  const [end, tab] = await Promise.all(['ctl-end-eve', 'ctl-tab-eve'].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
  await end!.waitAuthFailed(30_000);
  await tab!.waitAuthFailed(30_000);
  const failed = h.daemon.logs().filter((l) => l.code === 'FXS_PLUGIN_FAILED' && l.plugin === 'hostile-config');
  assert.equal(failed.length, 2);
  assert.ok(failed.every((l) => /config line contains a control character \(U\+00(01|09)\)/.test(String(l.err))));
  await h.server.waitForLog(/MANAGEMENT: CMD 'client-deny \d+ \d+ "plugin hostile-config on client-connect: config line contains a control character/);
  const log = h.server.log();
  assert.equal(/MANAGEMENT: CMD 'signal/.exec(log)?.[0], undefined, 'no config line became a command');
  assert.equal(/SIGTERM\[hard,\] received|process exiting/.exec(log)?.[0], undefined);
  assert.ok(h.server.running, 'OpenVPN is still running');
  const fine = await h.lab.startClient({ commonName: 'ctl-fine', port: h.port });
  await fine.waitConnected();
});

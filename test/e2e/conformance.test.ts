/**
 * The same end-to-end scenarios through both event sources: hook mode (OpenVPN runs the hook
 * client) and management mode (the daemon answers over OpenVPN's management interface).
 * One plugin, both modes, the same results.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { MODES, modeLab } from './mode-lab.ts';

const routeRe = (cn: string) => new RegExp(`${routeFor(cn).replace(/\./g, '\\.')}(,|$)`);

const HOSTILE = [
  'a;touch /tmp/fxs-pwned-1',
  '$(touch /tmp/fxs-pwned-2)',
  '`touch /tmp/fxs-pwned-3`',
  `it's "quoted" both ways`,
  'spaces  and  gaps ',
  'Zoë 雪 Ünïcødé',
  'back\\slash',
  'x'.repeat(64),
];

for (const mode of MODES) {
  describe(`${mode} mode`, () => {
    test("a plugin's pushed route arrives in the client's PUSH_REPLY", async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'alice', port: h.port });
      await client.waitConnected();
      assert.match(client.pushReply() ?? '', routeRe('alice'));
    });

    test("a plugin's deny fails the client's authentication and the reason is logged", async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'deny-eve', port: h.port });
      await client.waitAuthFailed();
      const line = await h.daemon.waitForLog('deny log line', (l) => l.msg === 'client-connect denied' && l.commonName === 'deny-eve');
      assert.equal(line.reason, 'recorder refuses deny-eve');
      assert.equal(line.plugin, 'recorder');
      if (mode === 'hook') {
        // OpenVPN runs client-disconnect for a denied deferred client too; plugins must not see it
        await h.daemon.waitForLog('denied client left', (l) => l.msg === 'denied client left' && l.commonName === 'deny-eve');
      } else {
        await h.server.waitForLog(/connection rejected: recorder refuses deny-eve, CLI:go away/);
        assert.match(client.log(), /AUTH_FAILED,go away/, 'the client is told why');
      }
      assert.deepEqual(h.recordsOf('client-disconnect'), []);
    });

    test('learn-address and client-disconnect reach plugins with address, common name, bytes and duration', async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'carol', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await client.waitConnected();
      const pushed = /ifconfig (\S+) /.exec(client.pushReply() ?? '')?.[1];
      const learn = await waitFor('learn-address add', () => h.recordsOf('learn-address').find((r) => r.operation === 'add'));
      assert.equal(learn.commonName, 'carol');
      assert.equal(learn.address, pushed);
      assert.equal(learn.sessionKnown, true, 'learn-address found the session by its address');
      await client.stop();
      const gone = await waitFor('disconnect record', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'carol'));
      assert.ok((gone.bytesReceived as number) > 0 && (gone.bytesSent as number) > 0, JSON.stringify(gone));
      assert.equal(typeof gone.duration, 'number');
      assert.equal(gone.stateKept, true, 'state set at connect is there at disconnect');
    });

    test('a plugin that throws denies that client while other clients connect', async (t) => {
      const h = await modeLab(t, mode);
      const [bad, ...good] = await Promise.all(['throw-x', 'dave', 'erin'].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
      await bad!.waitAuthFailed();
      await Promise.all(good.map((c) => c.waitConnected()));
      const line = await h.daemon.waitForLog('failure log', (l) => l.code === 'FXS_PLUGIN_FAILED' && l.plugin === 'recorder');
      assert.match(String(line.err), /exploded on purpose/);
      const late = await h.lab.startClient({ commonName: 'frank', port: h.port });
      await late.waitConnected();
    });

    test('hostile common names connect, reach plugins as exactly those strings, and nothing runs', async (t) => {
      const h = await modeLab(t, mode);
      const clients = await Promise.all(HOSTILE.map((commonName) => h.lab.startClient({ commonName, port: h.port })));
      await Promise.all(clients.map((c) => c.waitConnected()));
      const seen = h.recordsOf('client-connect');
      assert.deepEqual(seen.map((r) => r.commonName).sort(), [...HOSTILE].sort());
      for (const r of seen) assert.equal(r.envCommonName, r.commonName);
      for (const c of clients) assert.match(c.pushReply() ?? '', routeRe(c.commonName));
      for (const n of [1, 2, 3]) assert.equal(existsSync(`/tmp/fxs-pwned-${n}`), false);
    });

    test('50 clients connecting at once all get their own answer', async (t) => {
      const h = await modeLab(t, mode);
      const clients = await Promise.all(
        Array.from({ length: 50 }, (_, n) => h.lab.startClient({ commonName: n % 10 === 3 ? `deny-${n}` : `storm-${n}`, port: h.port })),
      );
      await Promise.all(
        clients.map(async (c) => {
          if (c.commonName.startsWith('deny-')) return c.waitAuthFailed(120_000);
          await c.waitConnected(120_000);
          assert.match(c.pushReply() ?? '', routeRe(c.commonName), c.commonName);
        }),
      );
      assert.equal(h.recordsOf('client-connect').length, 50);
    });

    test('passwords are checked: the right one connects, a wrong one is refused, none is logged', async (t) => {
      const h = await modeLab(t, mode, {
        events: ['user-pass-verify', 'client-connect', 'client-disconnect'],
        passwords: true,
        recorder: ['password: s3cret pass'],
      });
      const good = await h.lab.startClient({ commonName: 'kim', port: h.port, username: 'kim', password: 's3cret pass' });
      const bad = await h.lab.startClient({ commonName: 'lou', port: h.port, username: 'lou', password: 'guess' });
      await good.waitConnected();
      await bad.waitAuthFailed();
      const log = await h.daemon.waitForLog('auth deny', (l) => l.msg === 'user-pass-verify denied');
      assert.equal(log.reason, 'wrong password for lou');
      assert.ok(!JSON.stringify(h.daemon.logs()).includes('s3cret'), 'passwords are never logged');
    });
  });
}

/**
 * The web-login plugin through real OpenVPN, a real OpenID Connect provider (panva's
 * oidc-provider, started here) and a real browser (Debian's chromium through playwright-core),
 * in management mode and hook mode. The OpenVPN 2.6 client announces IV_SSO=webauth and has a
 * management interface, where it reports the login link (`>INFOMSG:WEB_AUTH::URL`) as it does
 * for a VPN GUI; the browser opens that link and logs in at the provider.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { decisionOf } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { browserLogin, CHROMIUM, startBrowser, visit } from '../support/browser.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { netnsLab, pushedAddress } from '../support/netns-lab.ts';
import { relayLoopback } from '../support/netns-relay.ts';
import { startProvider } from '../support/oidc-provider.ts';
import { clientSecretFile, loginLinks, webLoginClientLines, webLoginPlugin } from '../support/web-login.ts';
import { MODES, modeLab, type Mode } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root' : existsSync(CHROMIUM) ? false : 'chromium is not installed';

const USERS = {
  alice: { preferred_username: 'alice', groups: ['vpn-users', 'admins'], email_verified: true },
  bob: { preferred_username: 'bob', groups: ['staff'], email_verified: true },
  carol: { preferred_username: 'carol', groups: ['vpn-users'], email_verified: false },
  dave: { preferred_username: 'dave', groups: ['vpn-users'], email_verified: true },
};
const ADMIN_ROUTE = /route 10\.232\.0\.0 255\.255\.0\.0/;
const TIMEOUT_S = 30;

async function webLoginLab(t: TestContext, mode: Mode) {
  const port = await freeLoopbackPort();
  const publicUrl = `http://127.0.0.1:${port}/vpn-login`;
  const provider = await startProvider(t, { redirectUris: [`${publicUrl}/callback`], users: USERS });
  const secretFile = await clientSecretFile(t);
  const h = await modeLab(t, mode, {
    events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
    pluginTimeout: '10s',
    plugins: [
      ...webLoginPlugin({ issuer: provider.issuer, secretFile, listen: { address: '127.0.0.1', port }, publicUrl, timeoutS: TIMEOUT_S }),
      '  - use: client-config',
      '    options:',
      '      groups:',
      '        admins:',
      '          members: { groups: [admins] }',
      '          push: ["route 10.232.0.0 255.255.0.0"]',
    ],
  });
  const browser = await startBrowser(t);
  let n = 0;
  /** A client that announces web logins and reports their links on its management interface. */
  const start = async (commonName: string, extra: string[] = []) => {
    const socket = join(h.lab.dir, `web-${++n}.sock`);
    const client = await h.lab.startClient({
      commonName,
      port: h.port,
      extraConfig: [...webLoginClientLines(socket), ...extra],
    });
    return { client, ...(await loginLinks(t, socket)) };
  };
  const denial = async (commonName: string) =>
    String(
      (await h.daemon.waitForEvent(`the denial of ${commonName}`, decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName }), 60_000)).data.reason,
    );
  return { h, provider, browser, start, denial };
}

for (const mode of MODES) {
  describe(`web-login, ${mode} mode`, { skip }, () => {
    test("a browser login admits the client with its claims' username, groups and the group's push; a replayed callback is refused; re-auth by refresh without a browser, denied once the provider forgot the user", async (t) => {
      const { h, provider, browser, start, denial } = await webLoginLab(t, mode);
      const alice = await start('c-alice', ['reneg-sec 20']);
      let callback = '';
      const page = await browserLogin(browser, await alice.next(), 'alice', { onCallback: (u) => (callback = u) });
      const refusal = () =>
        h.daemon
          .events()
          .filter(decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName: 'c-alice' }))
          .map((e) => e.data.reason)
          .join('; ');
      assert.equal(page, 'You are signed in as alice, you can close this window.', `the daemon's reason: ${refusal()}`);
      await alice.client.waitConnected();
      assert.match(alice.client.pushReply() ?? '', ADMIN_ROUTE, "the admins group's push");
      const connect = await h.daemon.waitForEvent('alice admitted', decisionOf({ event: 'client-connect', verdict: 'accept', commonName: 'c-alice' }));
      assert.equal(connect.data.username, 'alice', 'the username from the claim is the identity');
      assert.deepEqual([...(connect.data.groups ?? [])].sort(), ['admins', 'vpn-users']);

      assert.match(await visit(browser, callback), /already completed \(a replayed callback\)/);

      // the renegotiation re-authenticates: the refresh grant decides, no second link
      await waitFor(
        'a second accepted authentication of alice',
        () => h.daemon.events().filter((e) => decisionOf({ event: 'user-pass-verify', verdict: 'accept', commonName: 'c-alice' })(e)).length >= 2,
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      assert.equal(alice.links.length, 1, 'no browser for the re-authentication');

      provider.users.delete('alice');
      assert.match(await denial('c-alice'), /^web login: the identity provider refused the refresh \(/);
      assert.equal(alice.links.length, 1);
    });

    test('missing group, a user failing a required claim, the browser never coming back (and its late login), the provider down → AUTH_FAILED with the reason', async (t) => {
      const { provider, browser, start, denial } = await webLoginLab(t, mode);
      const bob = await start('c-bob');
      assert.match(await browserLogin(browser, await bob.next(), 'bob'), /none of the required groups \(vpn-users\)/);
      await bob.client.waitAuthFailed();
      assert.match(await denial('c-bob'), /^web login: the user is in none of the required groups \(vpn-users\)$/);

      const carol = await start('c-carol');
      assert.match(await browserLogin(browser, await carol.next(), 'carol'), /email_verified claim is not true/);
      await carol.client.waitAuthFailed();
      assert.match(await denial('c-carol'), /email_verified claim is not true/);

      // dave opens the link and leaves the provider's page open past the wait
      const dave = await start('c-dave');
      const started = Date.now();
      let late = '';
      const lateLogin = browserLogin(browser, await dave.next(), 'dave', {
        beforeSubmit: async () => void (await denial('c-dave')),
      }).then((m) => (late = m));
      assert.equal(await denial('c-dave'), `web login: no login within ${TIMEOUT_S} s`);
      assert.ok(Date.now() - started < (TIMEOUT_S + 10) * 1000, 'within the wait');
      await dave.client.waitAuthFailed();
      await lateLogin;
      assert.match(late, /unknown or expired login state/, 'the state expired with the wait');

      await provider.stop();
      const erin = await start('c-erin');
      assert.match(await denial('c-erin'), /^web login: the identity provider is unreachable/);
      await erin.client.waitAuthFailed();
    });
  });
}

for (const mode of MODES) {
  describe(`web-login and the firewall, ${mode} mode`, { skip }, () => {
    test("after a web login the client's VPN address is in the nft set of its claims' group, and leaves it at the disconnect", async (t) => {
      // the daemon, OpenVPN and nft run in a network namespace; the provider and the browser here:
      // each side reaches the other's loopback port through a relay
      const port = await freeLoopbackPort();
      const publicUrl = `http://127.0.0.1:${port}/vpn-login`;
      const provider = await startProvider(t, { redirectUris: [`${publicUrl}/callback`], users: USERS });
      const secretFile = await clientSecretFile(t);
      const n = await netnsLab(t, mode, {
        events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
        pluginTimeout: '10s',
        inNamespace: async (netns) => {
          await relayLoopback(t, netns, { into: [port], outOf: [Number(new URL(provider.issuer).port)] });
          return {
            plugins: [
              ...webLoginPlugin({ issuer: provider.issuer, secretFile, listen: { address: '127.0.0.1', port }, publicUrl, timeoutS: TIMEOUT_S }),
              '  - use: firewall',
              '    options:',
              '      groups:',
              '        staff: { groups: [admins] }',
              '        guests: {}',
              '      default-group: guests',
            ],
          };
        },
      });
      const browser = await startBrowser(t);
      const start = async (commonName: string) => {
        const socket = join(n.h.lab.dir, `web-${commonName}.sock`);
        const client = await n.h.lab.startClient({ commonName, port: n.h.port, extraConfig: [...webLoginClientLines(socket), 'explicit-exit-notify 1'] });
        return { client, ...(await loginLinks(t, socket)) };
      };
      const alice = await start('c-alice');
      assert.equal(await browserLogin(browser, await alice.next(), 'alice'), 'You are signed in as alice, you can close this window.');
      await alice.client.waitConnected();
      const address = pushedAddress(alice.client.pushReply());
      const dave = await start('c-dave');
      assert.equal(await browserLogin(browser, await dave.next(), 'dave'), 'You are signed in as dave, you can close this window.');
      await dave.client.waitConnected();
      const daveAddress = pushedAddress(dave.client.pushReply());

      let sets: Record<string, string[]> = {};
      const setsBecome = async (what: string, want: Record<string, string[]>) => {
        const are = async () => {
          sets = { staff: await n.setElements('staff'), guests: await n.setElements('guests') };
          return JSON.stringify(sets) === JSON.stringify(want);
        };
        await waitFor(what, are, { timeoutMs: 60_000, intervalMs: 200 }).catch(() =>
          assert.fail(`${what}: the sets are ${JSON.stringify(sets)}, want ${JSON.stringify(want)}`),
        );
      };
      // alice's claims put her in admins (the staff set), dave in vpn-users only (the default set)
      await setsBecome('alice in staff, dave in guests', { staff: [address], guests: [daveAddress] });
      await alice.client.stop();
      await setsBecome('alice gone from staff', { staff: [], guests: [daveAddress] });
    });
  });
}

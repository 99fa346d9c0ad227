/**
 * The web-login plugin through real OpenVPN, a real OpenID Connect provider (panva's
 * oidc-provider, started here) and a real browser (Debian's chromium through playwright-core),
 * in management mode and hook mode. The OpenVPN 2.6 client announces IV_SSO=webauth and has a
 * management interface, where it reports the login link (`>INFOMSG:WEB_AUTH::URL`) as it does
 * for a VPN GUI; the browser opens that link and logs in at the provider.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { decisionOf, RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { LineSplitter } from '../../src/util/line-splitter.ts';
import { browserLogin, CHROMIUM, startBrowser, visit } from '../support/browser.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { OIDC_CLIENT, startProvider } from '../support/oidc-provider.ts';
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

/** The login links a client's management interface reports, as a VPN GUI reads them. */
async function loginLinks(t: TestContext, socket: string): Promise<{ readonly links: string[]; next(n?: number): Promise<string> }> {
  const sock = await waitFor(
    `client management socket ${socket}`,
    () =>
      new Promise<Socket | undefined>((resolve) => {
        const s = connect(socket);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      }),
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  t.after(() => sock.destroy());
  const links: string[] = [];
  const splitter = new LineSplitter(Number.POSITIVE_INFINITY);
  sock.on('data', (chunk: Buffer) =>
    splitter.split(chunk, {
      line: (l) => {
        if (l.startsWith('>HOLD:')) sock.write('hold release\n');
        const m = /^>INFOMSG:WEB_AUTH:[^:]*:(.+)$/.exec(l);
        if (m) links.push(m[1]!);
      },
    }),
  );
  sock.on('error', () => undefined);
  return { links, next: (n = 1) => waitFor(`login link ${n} on ${socket}`, () => links[n - 1], { timeoutMs: 60_000, intervalMs: 100 }) };
}

async function webLoginLab(t: TestContext, mode: Mode) {
  const port = await freeLoopbackPort();
  const publicUrl = `http://127.0.0.1:${port}/vpn-login`;
  const provider = await startProvider(t, { redirectUris: [`${publicUrl}/callback`], users: USERS });
  // only the daemon's user (nobody) reads the client secret
  const secretDir = await mkdtemp(join(tmpdir(), 'fxs-oidc-'));
  t.after(() => rm(secretDir, { recursive: true, force: true }));
  await chmod(secretDir, 0o755);
  const secretFile = join(secretDir, 'oidc-secret');
  await writeFile(secretFile, `${OIDC_CLIENT.secret}\n`, { mode: 0o600 });
  await chown(secretFile, RUN_AS.uid, RUN_AS.gid);
  const h = await modeLab(t, mode, {
    events: ['client-connect', 'client-disconnect', 'learn-address', 'user-pass-verify'],
    pluginTimeout: '10s',
    plugins: [
      '  - use: web-login',
      '    options:',
      `      issuer: ${provider.issuer}`,
      `      client-id: ${OIDC_CLIENT.id}`,
      `      client-secret-file: ${secretFile}`,
      `      listen: { address: 127.0.0.1, port: ${port} }`,
      `      public-url: ${publicUrl}`,
      '      auth-params: { prompt: consent }',
      '      groups-claim: groups',
      '      required-groups: [vpn-users]',
      '      required-claims: { email_verified: true }',
      `      timeout: ${TIMEOUT_S}s`,
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
      extraConfig: ['setenv IV_SSO webauth', 'push-peer-info', `management ${socket} unix`, 'management-hold', ...extra],
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

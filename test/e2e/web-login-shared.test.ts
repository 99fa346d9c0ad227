/**
 * Web logins across two daemons sharing one PostgreSQL store, each with its own real OpenVPN
 * server (management mode): one public callback URL, served here by the second daemon (as a
 * load balancer would send the browser there). A client of the first daemon logs in through the
 * second daemon's callback and is admitted by the first, with its group's push; a replayed
 * callback is refused; the store keeps no secret of a finished login.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decisionOf } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { browserLogin, CHROMIUM, startBrowser, visit } from '../support/browser.ts';
import { freeLoopbackPort } from '../support/free-port.ts';
import { startProvider } from '../support/oidc-provider.ts';
import { postgresBin, startPostgres } from '../support/postgres.ts';
import { clientSecretFile, loginLinks, webLoginClientLines, webLoginPlugin } from '../support/web-login.ts';
import { modeLab } from './mode-lab.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root' : !existsSync(CHROMIUM) ? 'chromium is not installed' : postgresBin() ? false : 'PostgreSQL is not installed';

const USERS = { alice: { preferred_username: 'alice', groups: ['vpn-users', 'admins'], email_verified: true } };
const ADMIN_ROUTE = /route 10\.232\.0\.0 255\.255\.0\.0/;

describe('web-login across daemons sharing PostgreSQL', { skip }, () => {
  test("a client of one daemon logs in through the other daemon's callback and is admitted with its group's push; a replayed callback is refused; the other daemon's own client logs in too", async (t) => {
    const pg = await startPostgres(t);
    const [northPort, southPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
    // the one public URL: the south daemon's callback server
    const publicUrl = `http://127.0.0.1:${southPort}/vpn-login`;
    const provider = await startProvider(t, { redirectUris: [`${publicUrl}/callback`], users: USERS });
    const secretFile = await clientSecretFile(t);
    const lab = (instance: string, port: number) =>
      modeLab(t, 'management', {
        instance,
        extraConfig: pg.yaml,
        pluginTimeout: '10s',
        plugins: [
          ...webLoginPlugin({ issuer: provider.issuer, secretFile, listen: { address: '127.0.0.1', port }, publicUrl, timeoutS: 60 }),
          '  - use: client-config',
          '    options:',
          '      groups:',
          '        admins:',
          '          members: { groups: [admins] }',
          '          push: ["route 10.232.0.0 255.255.0.0"]',
        ],
      });
    // one after the other: the second daemon finds the schema migrated by the first
    const north = await lab('north', northPort);
    const south = await lab('south', southPort);
    const store = await PostgresStore.open({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, 'password-file': pg.passwordFile, pool: 1 });
    t.after(() => store.close());

    const socket = join(north.lab.dir, 'web-alice.sock');
    const client = await north.lab.startClient({ commonName: 'c-alice', port: north.port, extraConfig: webLoginClientLines(socket) });
    const links = await loginLinks(t, socket);
    const link = await links.next();
    assert.ok(link.startsWith(`${publicUrl}/login/`), `the link is the shared public URL: ${link}`);

    const browser = await startBrowser(t);
    let callback = '';
    const refusal = () =>
      north.daemon
        .events()
        .filter(decisionOf({ event: 'user-pass-verify', verdict: 'deny', commonName: 'c-alice' }))
        .map((e) => e.data.reason)
        .join('; ');
    const page = await browserLogin(browser, link, 'alice', { onCallback: (u) => (callback = u) });
    assert.equal(page, 'You are signed in as alice, you can close this window.', `north's reason: ${refusal()}`);
    assert.ok(callback.startsWith(`${publicUrl}/callback?`), 'the provider sent the browser to the south daemon');

    await client.waitConnected();
    assert.match(client.pushReply() ?? '', ADMIN_ROUTE, "the admins group's push");
    const connect = await north.daemon.waitForEvent(
      'alice admitted by north',
      decisionOf({ event: 'client-connect', verdict: 'accept', commonName: 'c-alice' }),
    );
    assert.equal(connect.data.username, 'alice', 'the username from the claim is the identity');
    assert.deepEqual([...(connect.data.groups ?? [])].sort(), ['admins', 'vpn-users']);
    assert.equal(
      south.daemon.events().some((e) => e.channel === 'decision'),
      false,
      'the south daemon decided nothing: it only served the browser',
    );

    assert.match(await visit(browser, callback), /already completed \(a replayed callback\)/, 'the replay is refused, by the daemon that served the callback');
    assert.equal(links.links.length, 1);

    // the owner took the outcome: the row stays (to name a replay) without the login's secrets
    const rows = await waitFor('the outcome taken', async () => {
      const r = await store.pool.query<{ step: string; nonce: string | null; verifier: string | null; outcome: string | null; instance: string }>(
        'SELECT step, nonce, verifier, outcome, instance FROM web_logins',
      );
      return r.rows.every((row) => row.step === 'taken') ? r.rows : undefined;
    });
    assert.deepEqual(rows, [{ step: 'taken', nonce: null, verifier: null, outcome: null, instance: 'north' }]);

    // a client of the daemon that serves the URL logs in through it as well
    const southSocket = join(south.lab.dir, 'web-alice.sock');
    const southClient = await south.lab.startClient({ commonName: 'c-alice-2', port: south.port, extraConfig: webLoginClientLines(southSocket) });
    const southLinks = await loginLinks(t, southSocket);
    assert.equal(await browserLogin(browser, await southLinks.next(), 'alice'), 'You are signed in as alice, you can close this window.');
    await southClient.waitConnected();
    assert.match(southClient.pushReply() ?? '', ADMIN_ROUTE);
  });
});

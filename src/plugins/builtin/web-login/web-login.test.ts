/**
 * The plugin against a real OpenID Connect provider (oidc-provider) and a real browser
 * (chromium), without OpenVPN: the handler is called as the pipeline calls it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { z } from 'zod';
import { createLogger } from '../../../logger.ts';
import { parseEvent } from '../../../events/parse-event.ts';
import type { UserPassVerifyEvent } from '../../../events/event-map.ts';
import type { LiveSession, PendingAuth, PluginInstance, Services } from '../../plugin-api.ts';
import { fakeAuthContext } from '../../../../test/support/fake-auth-context.ts';
import { browserLogin, CHROMIUM, startBrowser, visit } from '../../../../test/support/browser.ts';
import { freeLoopbackPort } from '../../../../test/support/free-port.ts';
import { OIDC_CLIENT, startProvider } from '../../../../test/support/oidc-provider.ts';
import { CONTENT_SECURITY_POLICY } from './pages.ts';
import webLogin from './index.ts';

const USERS = {
  alice: { preferred_username: 'alice', groups: ['vpn-users', 'admins'], email_verified: true },
  bob: { preferred_username: 'bob', groups: ['staff'], email_verified: true },
};

async function setup(t: TestContext, options: Record<string, unknown> = {}) {
  const port = await freeLoopbackPort();
  const publicUrl = `http://127.0.0.1:${port}/vpn`;
  const provider = await startProvider(t, { redirectUris: [`${publicUrl}/callback`], users: USERS });
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const dir = await mkdtemp('/tmp/fxs-weblogin-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(`${dir}/secret`, `${OIDC_CLIENT.secret}\n`, { mode: 0o600 });
  const live: LiveSession[] = [];
  const plugin: PluginInstance = await webLogin.setup({
    options: webLogin.options!(z).parse({
      issuer: provider.issuer,
      'client-id': OIDC_CLIENT.id,
      'client-secret-file': 'secret',
      listen: { address: '127.0.0.1', port },
      'public-url': publicUrl,
      'auth-params': { prompt: 'consent' },
      'groups-claim': 'groups',
      'required-groups': ['vpn-users'],
      timeout: '20s',
      ...options,
    }),
    log: createLogger('silent'),
    instance: 'test',
    configDir: dir,
    signal: new AbortController().signal,
    services: { sessions: { list: () => live }, kill: async () => undefined } as Services,
  });
  t.after(() => plugin.close?.());
  const connect = (commonName: string, o: { ivSso?: string; realPort?: number } = {}) => {
    const event = parseEvent({
      name: 'user-pass-verify',
      instance: 'test',
      source: 'management',
      env: {
        common_name: commonName,
        username: '',
        password: '',
        untrusted_ip: '127.0.0.1',
        untrusted_port: String(o.realPort ?? 41000),
        ...(o.ivSso === '' ? {} : { IV_SSO: o.ivSso ?? 'openurl,webauth,crtext' }),
      },
    }) as UserPassVerifyEvent;
    let sawPending!: (p: PendingAuth) => void;
    const pending = new Promise<PendingAuth>((r) => (sawPending = r));
    const { ctx, out } = fakeAuthContext({ challenge: async () => '', onPending: (p) => sawPending(p) });
    const done = Promise.resolve(plugin['user-pass-verify']!(event, ctx)).then(() => out);
    const url = pending.then((p) => {
      assert.match(p.extra, /^WEB_AUTH::http:\/\/127\.0\.0\.1:\d+\/vpn\/login\/[\w-]{22}$/);
      return p.extra.slice('WEB_AUTH::'.length);
    });
    const asLive = (username: string) =>
      live.push({
        id: commonName,
        instance: 'test',
        commonName,
        username,
        realAddress: '127.0.0.1',
        realPort: o.realPort ?? 41000,
        groups: [],
        connectedAt: Date.now(),
      } as unknown as LiveSession);
    return { done, url, event, asLive };
  };
  return { plugin, provider, connect, port, publicUrl };
}

describe('web-login with a real provider and browser', { skip: existsSync(CHROMIUM) ? false : 'chromium is not installed' }, () => {
  test('login → username and groups from the claims; the page says so under a strict CSP; a replayed callback is refused; re-auth by refresh, refused once the user is gone', async (t) => {
    const s = await setup(t);
    const browser = await startBrowser(t);
    const alice = s.connect('c-alice');
    let callback = '';
    const message = await browserLogin(browser, await alice.url, 'alice', { onCallback: (u) => (callback = u) });
    assert.equal(message, 'You are signed in as alice, you can close this window.');
    const out = await alice.done;
    assert.equal(out.denied, undefined);
    assert.equal(out.username, 'alice');
    assert.deepEqual(out.groups, ['vpn-users', 'admins']);
    assert.equal(out.pending?.timeout, 30, 'the login time and 10 s for the answer to reach the client');

    const res = await fetch(callback);
    assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.match(await res.text(), /already completed \(a replayed callback\)/);

    // renegotiation of the live client: the refresh grant decides, no browser
    alice.asLive('alice');
    const again = s.connect('c-alice');
    const reauth = await again.done;
    assert.equal(reauth.pending, undefined, 'no login link this time');
    assert.equal(reauth.denied, undefined);
    assert.equal(reauth.username, 'alice');
    assert.deepEqual(reauth.groups, ['vpn-users', 'admins']);

    s.provider.users.delete('alice');
    const gone = await s.connect('c-alice').done;
    assert.equal(gone.pending, undefined);
    assert.match(gone.denied?.reason ?? '', /^web login: the identity provider refused the refresh \(/);
  });

  test('missing group, a link opened twice, a client without IV_SSO=webauth, the provider down → denied with the reason', async (t) => {
    const s = await setup(t);
    const browser = await startBrowser(t);
    const bob = s.connect('c-bob', { realPort: 41001 });
    const page = await browserLogin(browser, await bob.url, 'bob');
    assert.match(page, /none of the required groups \(vpn-users\)/);
    assert.match((await bob.done).denied?.clientReason ?? '', /^web login failed: the user is in none of the required groups/);

    const twice = s.connect('c-twice', { realPort: 41002 });
    const link = await twice.url;
    await browserLogin(browser, link, 'alice', { abandonAtProvider: true });
    assert.match(await visit(browser, link), /this login link was already used/);
    assert.match((await twice.done).denied?.reason ?? '', /the login link was opened twice/);

    const old = await s.connect('c-old', { ivSso: '', realPort: 41003 }).done;
    assert.match(old.denied?.reason ?? '', /did not announce IV_SSO=webauth/);
    assert.equal(old.pending, undefined);

    assert.deepEqual(await s.plugin.check!(), {
      ok: true,
      message: `issuer ${s.provider.issuer}; authorization ${s.provider.issuer}/auth; token ${s.provider.issuer}/token; JWKS ${s.provider.issuer}/jwks; callback ${s.publicUrl}/callback (register it with the provider)`,
    });
    await s.provider.stop();
    const started = Date.now();
    const down = await s.connect('c-down', { realPort: 41004 }).done;
    assert.match(down.denied?.reason ?? '', /^web login: the identity provider is unreachable/);
    assert.ok(Date.now() - started < 15_000, 'at once, not at the end of the wait');
    const check = await s.plugin.check!();
    assert.equal(check.ok, false);
    assert.match(check.message, /^cannot fetch the discovery document of http:\/\/127\.0\.0\.1:\d+: /);
  });

  test('the browser never comes back → denied when the wait ends; its late login is refused', async (t) => {
    const s = await setup(t, { timeout: '10s' });
    const browser = await startBrowser(t);
    const carol = s.connect('c-carol');
    const url = await carol.url;
    // starts at the provider, then gives up there
    let page = '';
    const late = browserLogin(browser, url, 'alice', {
      beforeSubmit: async () => {
        await carol.done;
      },
    }).then((m) => (page = m));
    const out = await carol.done;
    assert.match(out.denied?.reason ?? '', /^web login: no login within 10 s$/);
    await late;
    assert.match(page, /unknown or expired login state/);
  });
});

test('flexscript check fetches the discovery document and reports the issuer and endpoints; an unreachable provider fails the check', async (t) => {
  const { runChecks } = await import('../../../cli/check.ts');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const provider = await startProvider(t, { redirectUris: ['http://127.0.0.1:9/vpn/callback'], users: USERS });
  const dir = await mkdtemp('/tmp/fxs-weblogin-check-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = `${dir}/flexscript.yaml`;
  await writeFile(
    config,
    [
      'instance: e2e',
      'management:',
      '  instances:',
      `    - { name: e2e, socket: ${dir}/mgmt.sock }`,
      'plugins:',
      '  - use: web-login',
      '    options:',
      `      issuer: ${provider.issuer}`,
      `      client-id: ${OIDC_CLIENT.id}`,
      '      listen: { address: 127.0.0.1, port: 9 }',
      '      public-url: http://127.0.0.1:9/vpn',
      '',
    ].join('\n'),
  );
  const up = await runChecks(config);
  assert.deepEqual(
    up.found,
    [
      `web-login: issuer ${provider.issuer}; authorization ${provider.issuer}/auth; token ${provider.issuer}/token; JWKS ${provider.issuer}/jwks; callback http://127.0.0.1:9/vpn/callback (register it with the provider)`,
    ],
    up.problems.join('\n'),
  );
  await provider.stop();
  const down = await runChecks(config);
  assert.ok(
    down.problems.some((p) => p.endsWith(`flexscript.yaml: plugin web-login: cannot fetch the discovery document of ${provider.issuer}: fetch failed`)),
    down.problems.join('\n'),
  );
});

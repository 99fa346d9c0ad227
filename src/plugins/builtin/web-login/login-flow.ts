/**
 * @module login-flow
 * The two steps a browser takes: the link the VPN client opened sends it to the provider; the
 * provider's redirect back finishes the code exchange and settles the waiting client. Each step
 * answers with a redirect or a page; the waiting client hears the outcome with its reason.
 */
import type { Logger } from '../../plugin-api.ts';
import { type ClaimRules, mapClaims } from './claims.ts';
import { type Page, refused, signedIn } from './pages.ts';
import type { Logins } from './pending-logins.ts';
import type { Provider } from './provider.ts';

export type StartAnswer = { readonly redirect: string; readonly browser: string } | { readonly page: Page };

/** An OAuth error code is short ASCII; anything else is not shown as given. */
const errorCode = (v: string | null): string => (v && /^[\w.-]{1,64}$/.test(v) ? v : 'an error');

export class LoginFlow {
  constructor(
    private readonly o: {
      readonly provider: Provider;
      readonly logins: Logins;
      readonly rules: ClaimRules;
      readonly sameAddress: boolean;
      /** The callback as the provider knows it (PUBLIC-URL/callback). */
      readonly redirectUri: string;
      readonly log: Logger;
    },
  ) {}

  async start(id: string, address: string | undefined): Promise<StartAnswer> {
    const step = await this.o.logins.start(id, address, this.o.sameAddress);
    if (!step.ok) {
      this.o.log.info({ browser: address, reason: step.reason }, 'login link refused');
      return { page: refused(404, step.reason) };
    }
    const login = step.login;
    try {
      const url = await this.o.provider.authorizationUrl(login);
      this.o.log.info({ commonName: login.binding.commonName.slice(0, 64), browser: address }, 'browser sent to the provider');
      return { redirect: url.href, browser: login.browser };
    } catch (err) {
      const reason = `the identity provider is unreachable (${(err as Error).message})`;
      await login.settle({ ok: false, reason, provider: true });
      return { page: refused(502, reason) };
    }
  }

  async callback(query: URLSearchParams, browser: string | undefined, address: string | undefined): Promise<Page> {
    const state = query.get('state');
    if (!state) return refused(400, 'the provider sent no state');
    const step = await this.o.logins.finish(state, browser, address, this.o.sameAddress);
    if (!step.ok) {
      this.o.log.info({ browser: address, reason: step.reason }, 'login callback refused');
      return refused(400, step.reason);
    }
    const login = step.login;
    const fail = async (status: Page['status'], reason: string, provider = false): Promise<Page> => {
      await login.settle({ ok: false, reason, ...(provider ? { provider } : {}) });
      return refused(status, reason);
    };
    if (query.has('error')) return fail(403, `the identity provider refused the login (${errorCode(query.get('error'))})`);
    let tokens: Awaited<ReturnType<Provider['exchange']>>;
    try {
      const url = new URL(this.o.redirectUri);
      url.search = query.toString();
      tokens = await this.o.provider.exchange(url, login);
    } catch (err) {
      return fail(502, `the login could not be completed with the identity provider (${(err as Error).message})`, true);
    }
    const who = mapClaims(tokens.claims, this.o.rules);
    if (!who.ok) return fail(403, who.reason);
    const admitted = await login.settle({
      ok: true,
      username: who.username,
      groups: who.groups,
      ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
    });
    // the page tells the truth: a client that stopped waiting meanwhile is not admitted
    return admitted ? signedIn(who.username) : refused(400, 'the VPN client stopped waiting for this login');
  }
}

/**
 * @module web-server
 * The callback server: PATH/login/ID (the link the VPN client opens) and PATH/callback (where
 * the provider sends the browser back), on the operator's address, with TLS where it listens
 * directly. A cookie ties the callback to the browser that followed the link.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Logger } from '../../plugin-api.ts';
import { browserAddress } from './browser-address.ts';
import type { LoginFlow } from './login-flow.ts';
import { type Page, refused, renderPage, SECURITY_HEADERS } from './pages.ts';

const COOKIE = 'flexscript_login';

export interface WebServerOptions {
  readonly address: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string };
  /** The public URL's path: routes live under it. */
  readonly basePath: string;
  /** The browser reaches the server over https (directly or through the proxy): the cookie is Secure. */
  readonly secureCookie: boolean;
  readonly trustedProxies: readonly string[];
  readonly flow: LoginFlow;
  readonly log: Logger;
}

type Env = { Bindings: { incoming: IncomingMessage } };

export class WebServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listens; rejects when the address cannot be bound. */
  static async start(o: WebServerOptions): Promise<WebServer> {
    const app = new Hono<Env>();
    const base = o.basePath.replace(/\/+$/, '');
    const show = (page: Page) =>
      new Response(renderPage(page), { status: page.status, headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8' } });
    const addressOf = (incoming: IncomingMessage) => {
      const forwarded = incoming.headers['x-forwarded-for'];
      return browserAddress(incoming.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(',') : forwarded, o.trustedProxies);
    };
    app.get(`${base}/login/:id`, async (c) => {
      const id = c.req.param('id');
      if (!/^[\w-]{1,64}$/.test(id)) return show(refused(404, 'this login link is unknown or has expired'));
      const answer = await o.flow.start(id, addressOf(c.env.incoming));
      if ('page' in answer) return show(answer.page);
      setCookie(c, COOKIE, answer.browser, { httpOnly: true, sameSite: 'Lax', secure: o.secureCookie, path: `${base}/callback`, maxAge: 600 });
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
      return c.redirect(answer.redirect, 302);
    });
    app.get(`${base}/callback`, async (c) => {
      const query = new URL(c.req.url).searchParams;
      const page = await o.flow.callback(query, getCookie(c, COOKIE), addressOf(c.env.incoming));
      return show(page);
    });
    app.notFound(() => show(refused(404, 'there is nothing here')));
    app.onError((err) => {
      o.log.error({ err: err.message }, 'callback server failed on a request');
      return show(refused(500, 'the VPN login server failed'));
    });

    const listener = getRequestListener((req, env) => app.fetch(req, env));
    const server = o.tls ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, listener) : createHttpServer(listener);
    // a slow or idle browser holds no connection for long
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => o.log.error({ err: err.message }, 'callback server error'));
    return new WebServer(server);
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

/**
 * @module pages
 * The few pages the callback server shows: plain HTML, every value escaped, no script, no
 * style, no external resource, sent with a Content-Security-Policy that allows none of them.
 */

export interface Page {
  readonly status: 200 | 400 | 403 | 404 | 500 | 502;
  readonly title: string;
  readonly message: string;
}

/** Nothing may load, run, frame the page or be posted from it. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers of every answer of the callback server. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderPage(page: Page): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    `<title>${escapeHtml(page.title)}</title></head>`,
    `<body><h1>${escapeHtml(page.title)}</h1><p id="message">${escapeHtml(page.message)}</p></body></html>`,
    '',
  ].join('\n');
}

export const signedIn = (username: string): Page => ({
  status: 200,
  title: 'VPN login',
  message: `You are signed in as ${username}, you can close this window.`,
});

export const refused = (status: Page['status'], reason: string): Page => ({
  status,
  title: 'VPN login failed',
  message: `The VPN login did not succeed: ${reason}. Close this window and connect again.`,
});

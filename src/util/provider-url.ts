/**
 * @module provider-url
 * The URLs of an OpenID Connect login (the provider's issuer, the callback's public address):
 * https, or http on this host only (a local test provider, a console reached on loopback).
 */

/** Whether the URL names this host: localhost, ::1 or 127.x.x.x. */
export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** https://, or http:// on this host (for a schema's refine, after its url check). */
export function isHttpsOrLoopback(u: string): boolean {
  const url = new URL(u);
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackUrl(url));
}

/** What isHttpsOrLoopback asks, for the schema's message after the field's name. */
export const HTTPS_OR_LOOPBACK = 'must be https:// (http:// only on this host, 127.0.0.1 or localhost)';

/**
 * @module browser-address
 * The browser's address as the callback server sees it: the peer's, or, when the peer is one
 * of the operator's reverse proxies, the last address in X-Forwarded-For that is not one of
 * them. Anyone else's X-Forwarded-For is ignored: a browser could write anything there.
 */
import { isIP } from 'node:net';
import { plainAddress } from './pending-logins.ts';

export function browserAddress(peer: string | undefined, forwardedFor: string | undefined, trustedProxies: readonly string[]): string | undefined {
  const trusted = new Set(trustedProxies.map((a) => plainAddress(a)));
  let address = plainAddress(peer);
  if (address === undefined || !trusted.has(address) || forwardedFor === undefined) return address;
  // each proxy appends the address it got the request from: read from the right
  const hops = forwardedFor.split(',').map((h) => h.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = plainAddress(hops[i]);
    if (hop === undefined || isIP(hop) === 0) return undefined;
    address = hop;
    if (!trusted.has(hop)) return hop;
  }
  return address;
}

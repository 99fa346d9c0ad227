/**
 * @module local-addresses
 * The addresses this host holds right now (every interface of the root stage's network
 * namespace that is up and running), so a request can never act on the server itself. Read
 * from the kernel at each call (getifaddrs, no process): OpenVPN's tun device and its address
 * come and go. (An interface that is down is not listed; the server's address in a VPN network
 * is refused anyway, see clientAddress.)
 */
import { networkInterfaces } from 'node:os';
import { parseAddress, type HostAddress } from './ip-address.ts';
import type { IsLocalAddress } from './validate.ts';

function localAddressTexts(): Set<string> {
  const texts = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      try {
        texts.add(parseAddress(info.address.replace(/%.*$/, '')).text);
      } catch {
        // not an address we could be asked about
      }
    }
  }
  return texts;
}

/** A check that reads the host's addresses once per request, not once per address. */
export function localAddressCheck(): IsLocalAddress {
  let texts: Set<string> | undefined;
  return (address: HostAddress) => (texts ??= localAddressTexts()).has(address.text);
}

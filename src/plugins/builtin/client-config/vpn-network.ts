/**
 * @module vpn-network
 * The server's IPv4 VPN network as OpenVPN lays it out, and the rules a static address must
 * follow in it. OpenVPN's `server NET MASK` keeps NET+1 for itself and hands out the rest of
 * the network dynamically (topology subnet: NET+2 .. last-1; net30: NET+4 .. last-4, in /30
 * blocks), so a static address needs room made with `server NET MASK nopool` plus a smaller
 * `ifconfig-pool`. Pure.
 */
import { contains, formatBits, parseAddress, type HostAddress, type Network } from '../../../util/ip-address.ts';

export type Topology = 'subnet' | 'net30';

export interface VpnNetwork {
  readonly network: Network;
  readonly topology: Topology;
  /** OpenVPN's dynamic pool, inclusive. */
  readonly pool: { readonly start: HostAddress; readonly end: HostAddress };
  /** `server-ipv6`, when static IPv6 addresses are given. */
  readonly network6?: Network;
}

const v4 = (bits: bigint): HostAddress => ({ family: 4, bits, text: formatBits(bits, 4) });

function lastAddress(n: Network): bigint {
  return n.bits | ((1n << BigInt(32 - n.prefix)) - 1n);
}

/** The pool `server NET MASK` makes when no `ifconfig-pool` is given. */
export function defaultPool(network: Network, topology: Topology): VpnNetwork['pool'] {
  const last = lastAddress(network);
  return topology === 'subnet' ? { start: v4(network.bits + 2n), end: v4(last - 1n) } : { start: v4(network.bits + 4n), end: v4(last - 4n) };
}

/** `a.b.c.d` with a contiguous run of one bits, as a prefix length; undefined when not a netmask. */
export function netmaskPrefix(mask: string): number | undefined {
  let bits: bigint;
  try {
    const a = parseAddress(mask);
    if (a.family !== 4) return undefined;
    bits = a.bits;
  } catch {
    return undefined;
  }
  const inverted = ~bits & 0xffffffffn;
  // a netmask's host part is 2^k - 1
  if ((inverted & (inverted + 1n)) !== 0n) return undefined;
  return 32 - inverted.toString(2).replace(/^0+/, '').length;
}

function prefixNetmask(prefix: number): string {
  return formatBits(prefix === 0 ? 0n : (0xffffffffn << BigInt(32 - prefix)) & 0xffffffffn, 4);
}

/** Why `pool` cannot be the dynamic pool of `network`, or undefined. */
export function poolProblem(vpn: Pick<VpnNetwork, 'network' | 'pool'>): string | undefined {
  const { network, pool } = vpn;
  if (!contains(network, pool.start) || !contains(network, pool.end)) return `the pool ${pool.start.text}-${pool.end.text} is not inside ${network.text}`;
  if (pool.start.bits > pool.end.bits) return `the pool starts after it ends (${pool.start.text}-${pool.end.text})`;
  if (pool.start.bits <= network.bits + 1n) return `the pool must start above the server's address ${formatBits(network.bits + 1n, 4)}`;
  return undefined;
}

/**
 * Why `address` cannot be a static client address, or undefined. The key it returns is what two
 * clients must not share (the address, or its /30 block in net30).
 */
export function reservationProblem(vpn: VpnNetwork, address: HostAddress): { problem?: string; key: bigint } {
  const { network, pool } = vpn;
  const range = `${pool.start.text}-${pool.end.text}`;
  if (address.family !== 4 || !contains(network, address)) return { problem: `${address.text} is outside the VPN network ${network.text}`, key: address.bits };
  if (address.bits === network.bits || address.bits === lastAddress(network))
    return { problem: `${address.text} is the network's own or broadcast address`, key: address.bits };
  if (address.bits === network.bits + 1n) return { problem: `${address.text} is the server's address`, key: address.bits };
  if (vpn.topology === 'net30') {
    const block = address.bits & ~3n;
    if (address.bits - block !== 1n) {
      return { problem: `with topology net30 a static address is the first host of a /30 (${formatBits(block + 1n, 4)}), not ${address.text}`, key: block };
    }
    if (block + 3n >= pool.start.bits && block <= pool.end.bits) return { problem: `${address.text} is inside the dynamic pool ${range}`, key: block };
    return { key: block };
  }
  if (address.bits >= pool.start.bits && address.bits <= pool.end.bits) {
    return { problem: `${address.text} is inside the dynamic pool ${range}; shrink the pool (server ... nopool, ifconfig-pool)`, key: address.bits };
  }
  return { key: address.bits };
}

/** The config line that gives a client its static IPv4 address. */
export function ifconfigPushLine(vpn: VpnNetwork, address: HostAddress): string {
  // net30: the client's address and the server-side end of its /30; subnet: address and netmask
  if (vpn.topology === 'net30') return `ifconfig-push ${address.text} ${formatBits(address.bits + 1n, 4)}`;
  return `ifconfig-push ${address.text} ${prefixNetmask(vpn.network.prefix)}`;
}

export function ifconfigIpv6PushLine(network6: Network, address: HostAddress): string {
  return `ifconfig-ipv6-push ${address.text}/${network6.prefix}`;
}

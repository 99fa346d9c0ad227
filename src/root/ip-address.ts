/**
 * @module ip-address
 * Addresses and networks as parsed values: node:net decides what is an address, the text is
 * always the canonical form (what nft and ip print back), and the bits allow exact prefix
 * arithmetic. Nothing here accepts a hostname, a zone id (`%eth0`), spaces or any other text.
 */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { LIMITS, RootError, RootErrorCode } from './protocol.ts';

export type Family = 4 | 6;

export interface HostAddress {
  readonly family: Family;
  /** Canonical text: dotted quad, or RFC 5952 lowercase compressed IPv6. */
  readonly text: string;
  readonly bits: bigint;
}

export interface Network {
  readonly family: Family;
  /** The network address, canonical. */
  readonly address: string;
  readonly prefix: number;
  /** `address/prefix`. */
  readonly text: string;
  readonly bits: bigint;
}

export function widthOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

function v4Bits(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number.parseInt(octet, 10)), 0n);
}

/** Bits of a canonical IPv6 text (may hold `::` and a trailing dotted quad). */
function v6Bits(text: string): bigint {
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const groups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [Number.parseInt(g, 16)];
      const q = Number(v4Bits(g));
      return [q >>> 16, q & 0xffff];
    });
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Canonical text for bits of the given family. */
export function formatBits(bits: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((bits >> s) & 0xffn)).join('.');
  const full = Array.from({ length: 8 }, (_, i) => ((bits >> BigInt(16 * (7 - i))) & 0xffffn).toString(16)).join(':');
  return new SocketAddress({ address: full, family: 'ipv6' }).address;
}

function badAddress(value: unknown, why: string): RootError {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value;
  return new RootError(RootErrorCode.BAD_ADDRESS, `${shown} is not a single IPv4 or IPv6 address: ${why}`);
}

/** Parses one host address; throws BAD_ADDRESS on anything else. */
export function parseAddress(value: unknown): HostAddress {
  if (typeof value !== 'string') throw badAddress(value, 'expected a string');
  if (value.length === 0 || value.length > LIMITS.string) throw badAddress(value, 'empty or too long');
  // node:net accepts IPv6 zone ids (fe80::1%eth0): an interface name has no place here
  if (value.includes('%')) throw badAddress(value, 'zone ids are not accepted');
  if (isIPv4(value)) return { family: 4, text: value, bits: v4Bits(value) };
  if (isIPv6(value)) {
    const text = new SocketAddress({ address: value, family: 'ipv6' }).address;
    return { family: 6, text, bits: v6Bits(text) };
  }
  throw badAddress(value, 'not an address');
}

/** Parses `address/prefix` with the host bits clear; throws BAD_NETWORK otherwise. */
export function parseNetwork(value: unknown): Network {
  const bad = (why: string) =>
    new RootError(RootErrorCode.BAD_NETWORK, `${typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value} is not a network: ${why}`);
  if (typeof value !== 'string') throw bad('expected a string such as 10.9.0.0/24');
  if (value.length > LIMITS.string) throw bad('too long');
  const slash = value.indexOf('/');
  if (slash < 0 || slash !== value.lastIndexOf('/')) throw bad('expected address/prefix-length');
  const prefixText = value.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) throw bad('prefix length is not a number');
  let host: HostAddress;
  try {
    host = parseAddress(value.slice(0, slash));
  } catch {
    throw bad('the address part is not an IPv4 or IPv6 address');
  }
  const prefix = Number.parseInt(prefixText, 10);
  const width = widthOf(host.family);
  if (prefix > width) throw bad(`prefix length must be 0..${width}`);
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  if ((host.bits & hostMask) !== 0n) {
    throw bad(`host bits are set (the network is ${formatBits(host.bits & ~hostMask, host.family)}/${prefix})`);
  }
  return { family: host.family, address: host.text, prefix, text: `${host.text}/${prefix}`, bits: host.bits };
}

/** True when `inner` (a network or a host) lies inside `outer`. */
export function contains(outer: Network, inner: Network | HostAddress): boolean {
  if (outer.family !== inner.family) return false;
  const innerPrefix = 'prefix' in inner ? inner.prefix : widthOf(inner.family);
  if (innerPrefix < outer.prefix) return false;
  const shift = BigInt(widthOf(outer.family) - outer.prefix);
  return inner.bits >> shift === outer.bits >> shift;
}

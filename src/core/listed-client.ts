/**
 * @module listed-client
 * OpenVPN's list of connected clients (a `status 3` row, from the management interface or hook
 * mode's status file) turned into the client model: the one place that reads such a row.
 */
import type { StatusClient } from '../openvpn-management/commands.ts';
import { hookKey, managementKey, type ConnectionKey, type ListedClient } from './client.ts';

/** `198.51.100.7:51234`, `[2001:db8::1]:1194` or `udp4:1.2.3.4:5` → address and port. */
export function splitAddress(text: string): [string | undefined, number | undefined] {
  const t = text.replace(/^(udp|tcp)[46]?(-server)?:/, '');
  const m = /^\[?([0-9A-Fa-f:.]+?)\]?(?::(\d+))?$/.exec(t);
  if (!m) return [undefined, undefined];
  // a bare IPv6 address has colons but no port
  if (m[1]!.includes(':') && !t.startsWith('[') && m[2] !== undefined && t.split(':').length > 2) return [t, undefined];
  return [m[1], m[2] === undefined ? undefined : Number(m[2])];
}

/**
 * A listed client of `instance`, keyed the way the source that serves it names clients. The
 * username is whatever the client sent (OpenVPN lists it verified or not): whoever rebuilds
 * sessions from the list decides whether it is identity.
 */
export function listedClient(instance: string, row: StatusClient, via: ConnectionKey['via']): ListedClient {
  const [realAddress, realPort] = splitAddress(row.realAddress);
  const identity = { instance, commonName: row.commonName, realAddress, realPort };
  return {
    ...identity,
    key: via === 'management' ? managementKey(instance, row.clientId) : hookKey(identity),
    username: row.username,
    vpnAddress: row.virtualAddress || undefined,
    vpnAddress6: row.virtualIPv6Address || undefined,
    connectedAt: row.connectedSince * 1000,
    bytesReceived: row.bytesReceived,
    bytesSent: row.bytesSent,
  };
}

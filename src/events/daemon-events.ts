/**
 * @module daemon-events
 * Typed constructors for the events the daemon makes itself rather than receives from a hook:
 * a learn-address add for an address OpenVPN assigned (management >CLIENT:ADDRESS, hook mode's
 * `learn-address: connect`), and the disconnect of a client that left while nobody watched.
 * They carry the env and arguments OpenVPN would have given, for plugins that run legacy scripts.
 */
import { EventParseError } from '../errors.ts';
import type { ClientInfo } from '../core/client.ts';
import type { ClientDisconnectEvent, EventSource, LearnAddressEvent } from './event-map.ts';

/** Checked as parse-event checks a learn-address address: any other text is refused. */
const ADDRESS = /^[0-9A-Fa-f:./@]{1,4096}$/;

/** A learn-address add of `address` for the client `commonName` (undefined when no live client holds it). */
export function learnAddressAdd(instance: string, source: EventSource, address: string, commonName: string | undefined): LearnAddressEvent {
  if (!ADDRESS.test(address)) throw new EventParseError('learn-address', 'arg 2 (address)', `not an address: ${JSON.stringify(address.slice(0, 80))}`);
  const args = ['add', address, commonName ?? ''];
  return { name: 'learn-address', instance, source, env: {}, args, operation: 'add', address, commonName: commonName || undefined };
}

/**
 * The disconnect of a live client found gone from OpenVPN's list: OpenVPN's own disconnect was
 * missed (the daemon was detached or OpenVPN restarted). Bytes are unknown (0).
 */
export function missedDisconnect(client: ClientInfo & { readonly connectedAt: number }, source: EventSource, now = Date.now()): ClientDisconnectEvent {
  const duration = Math.max(0, Math.round((now - client.connectedAt) / 1000));
  const env: Record<string, string> = {
    common_name: client.commonName,
    ...(client.username ? { username: client.username } : {}),
    ...(client.realAddress ? { trusted_ip: client.realAddress } : {}),
    ...(client.realPort ? { trusted_port: String(client.realPort) } : {}),
    ...(client.vpnAddress ? { ifconfig_pool_remote_ip: client.vpnAddress } : {}),
    ...(client.vpnAddress6 ? { ifconfig_pool_remote_ip6: client.vpnAddress6 } : {}),
    time_duration: String(duration),
  };
  return {
    name: 'client-disconnect',
    instance: client.instance,
    source,
    env,
    args: [],
    commonName: client.commonName,
    username: client.username,
    realAddress: client.realAddress,
    realPort: client.realPort,
    vpnAddress: client.vpnAddress,
    vpnAddress6: client.vpnAddress6,
    bytesReceived: 0,
    bytesSent: 0,
    duration,
    missed: true,
  };
}

/**
 * @module client
 * The one declaration of a connected client: who it is, where it comes from, which VPN
 * addresses it holds, since when. Every other shape of a client (events, live sessions,
 * records, status rows, plugin views) derives from `Client` with Pick/Omit; none retypes a
 * field. Pure: no I/O, no imports.
 */

/**
 * Which connection of which OpenVPN instance a live client is, as the source that serves it
 * names it: management mode by OpenVPN's client id, hook mode by the client's real address and
 * port (with its common name: hook runs carry nothing better). A value, never a string to slice.
 */
export type ConnectionKey =
  | { readonly via: 'management'; readonly instance: string; readonly cid: number }
  | {
      readonly via: 'hook';
      readonly instance: string;
      readonly realAddress?: string;
      readonly realPort?: number;
      readonly commonName: string;
    };

/**
 * A connected client. Every string may be hostile (see the identity rules in events/event-map.ts:
 * the common name is what the certificate says; a username is identity only once verified).
 */
export interface Client {
  /** The OpenVPN instance (server) serving the client, as named in the config. */
  readonly instance: string;
  readonly key: ConnectionKey;
  readonly commonName: string;
  /** A verified username only; never what a client merely claimed (that stays in the event's env). */
  readonly username?: string;
  /** The client's real (outside) address and port. */
  readonly realAddress?: string;
  readonly realPort?: number;
  /** VPN addresses: from the connect, the accepted answer's ifconfig-push, or OpenVPN's ADDRESS. */
  readonly vpnAddress?: string;
  readonly vpnAddress6?: string;
  /** ms since the epoch. */
  readonly connectedAt: number;
  /** Groups the client belongs to (from whoever authenticated it and the operator's rules); empty until something fills it. */
  readonly groups: readonly string[];
}

/** Who a client is and where from: what every client event carries. */
export type ClientIdentity = Pick<Client, 'commonName' | 'username' | 'realAddress' | 'realPort'>;

/** A client's VPN addresses. */
export type VpnAddresses = Pick<Client, 'vpnAddress' | 'vpnAddress6'>;

/** What is known of a client before it is a live session: its instance, identity and addresses. */
export type ClientInfo = Omit<Client, 'key' | 'connectedAt' | 'groups'>;

/**
 * A client connection as records name it when the daemon's session id is not known (after a
 * restart): instance, common name, real address and port, unique among a server's live clients.
 */
export type ClientConnection = Pick<Client, 'instance' | 'commonName' | 'realAddress' | 'realPort'>;

/** A client OpenVPN lists as connected (management `status 3`, hook mode's status file), with its byte counts. */
export interface ListedClient extends Omit<Client, 'groups'> {
  /** Bytes from the client and to it, as OpenVPN counts them. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
}

/** The management key of a client id. */
export const managementKey = (instance: string, cid: number): ConnectionKey => ({ via: 'management', instance, cid });

/** The hook key of a client connection. */
export const hookKey = (c: ClientConnection): ConnectionKey => ({
  via: 'hook',
  instance: c.instance,
  realAddress: c.realAddress,
  realPort: c.realPort,
  commonName: c.commonName,
});

/**
 * The one string a client connection becomes, for maps: how a record is found again by its
 * connection when the daemon's session ids are not known (after a restart). NUL separates the
 * parts: it appears in no instance name, address or port, and OpenVPN refuses it in a common
 * name. A missing address or port is the empty part: the store keeps NULL for it and reads it
 * back as absent, and OpenVPN's empty `untrusted_ip` is no address either (parse-event.ts), so
 * a record of a client that had no address finds that client however the absence reached it.
 */
export const connectionString = (c: ClientConnection): string => `${c.instance}\0${c.realAddress ?? ''}\0${c.realPort ?? ''}\0${c.commonName}`;

/** The one string a key becomes, for maps: no two keys share a string. */
export function keyString(key: ConnectionKey): string {
  return key.via === 'management' ? `management\0${key.instance}\0${key.cid}` : `hook\0${connectionString(key)}`;
}

export function sameKey(a: ConnectionKey, b: ConnectionKey): boolean {
  return keyString(a) === keyString(b);
}

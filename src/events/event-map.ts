/**
 * @module event-map
 * The one typed map of OpenVPN events. Hook names, payloads, which events carry a decision and
 * which can be deferred are all derived from here; an unknown name fails where it is used.
 */
import type { ClientIdentity, VpnAddresses } from '../core/client.ts';
import type { ChallengeResponse } from './password-challenge.ts';

export type { ChallengeResponse };

/** OpenVPN's hook names, spelled as its `script_type` (user-pass-verify, not auth-user-pass-verify). */
export const EVENT_NAMES = [
  'up',
  'down',
  'route-up',
  'route-pre-down',
  'ipchange',
  'tls-verify',
  'user-pass-verify',
  'client-connect',
  'client-disconnect',
  'learn-address',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

export function isEventName(value: string): value is EventName {
  return (EVENT_NAMES as readonly string[]).includes(value);
}

/** Events whose handlers can refuse something: a deny from any plugin wins. */
export const DECISION_EVENTS = ['tls-verify', 'user-pass-verify', 'client-connect', 'learn-address'] as const;
export type DecisionEventName = (typeof DECISION_EVENTS)[number];
export function isDecisionEvent(name: EventName): name is DecisionEventName {
  return (DECISION_EVENTS as readonly string[]).includes(name);
}

/** Where an event came from: a hook process, or OpenVPN's management interface. */
export type EventSource = 'hook' | 'management';

interface EventBase<N extends EventName> {
  readonly name: N;
  /** The OpenVPN instance (server) this event belongs to, as named in the config. */
  readonly instance: string;
  readonly source: EventSource;
  /** The exact environment OpenVPN passed, untouched. Client-controlled values are data. */
  readonly env: Readonly<Record<string, string>>;
  /** The hook's arguments after the script path (empty in management mode). */
  readonly args: readonly string[];
}

/**
 * Who a client is and where it comes from (the client model's identity fields, see
 * core/client.ts). Every string here may be hostile. The common name is what the certificate
 * says. A username is identity only once verified: on client-connect and client-disconnect
 * `username` is set only when a user-pass-verify plugin that verifies usernames accepted it for
 * this very client (or OpenVPN itself did, where the config says so:
 * `identity: usernames-verified-by-openvpn`). What a client merely sent stays in
 * `env.username`, as data. Common names and usernames are separate namespaces. `realAddress` is
 * trusted_ip, trusted_ip6 or untrusted_ip.
 */
export type { ClientIdentity };

/** Arguments of up, down and route-pre-down: `dev tun_mtu 0 ifconfig_local remote|netmask init|restart`. */
export interface TunnelDevice {
  readonly dev: string;
  readonly tunMtu?: number;
  readonly ifconfigLocal?: string;
  /** The remote endpoint (p2p) or the netmask (topology subnet). */
  readonly ifconfigRemoteOrNetmask?: string;
  readonly phase?: 'init' | 'restart';
}

export interface UpEvent extends EventBase<'up'>, TunnelDevice {}
export interface DownEvent extends EventBase<'down'>, TunnelDevice {}
export interface RoutePreDownEvent extends EventBase<'route-pre-down'>, TunnelDevice {}
export interface RouteUpEvent extends EventBase<'route-up'> {
  readonly dev?: string;
}

export interface IpChangeEvent extends EventBase<'ipchange'> {
  readonly address: string;
  readonly port?: number;
}

export interface TlsVerifyEvent extends EventBase<'tls-verify'> {
  /** Position in the chain: 0 is the client's own certificate. */
  readonly depth: number;
  readonly subject: string;
  /** The common name at this depth, when the subject has one. */
  readonly commonName?: string;
  readonly realAddress?: string;
  readonly realPort?: number;
}

export interface UserPassVerifyEvent extends EventBase<'user-pass-verify'>, ClientIdentity {
  /** The username the client claims: what this event is about to verify. */
  readonly username: string;
  /**
   * Never logged: the logger redacts any `password` field. The password alone: a static-challenge
   * password (`SCRV1:...`) is decoded, and a CRV1 answer gives the password of the connect it answers.
   */
  readonly password: string;
  /** The second factor the client sent with its password (static challenge, CRV1 answer), if any. */
  readonly challengeResponse?: ChallengeResponse;
}

export interface ClientConnectEvent extends EventBase<'client-connect'>, ClientIdentity, VpnAddresses {
  readonly vpnNetmask?: string;
  /** Unix seconds when OpenVPN saw the connect. */
  readonly time?: number;
  /** Peer info the client sent (IV_* and UV_*): client-controlled. */
  readonly peerInfo: Readonly<Record<string, string>>;
  /** True for a re-authentication of a live client (management REAUTH). */
  readonly reauth: boolean;
}

export interface ClientDisconnectEvent extends EventBase<'client-disconnect'>, ClientIdentity, VpnAddresses {
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Seconds the client was connected. */
  readonly duration: number;
  /**
   * True when OpenVPN's own disconnect was missed (the daemon was down or detached) and the
   * daemon closes the session after finding the client gone; bytes are then unknown (0).
   */
  readonly missed: boolean;
}

export interface LearnAddressEvent extends EventBase<'learn-address'> {
  readonly operation: 'add' | 'update' | 'delete';
  /** An IPv4/IPv6 address, a network with prefix, or a MAC address (tap). */
  readonly address: string;
  /** Absent on delete: OpenVPN does not say whose route aged out. */
  readonly commonName?: string;
}

/**
 * OpenVPN's `client-crresponse` (hook mode): a client's answer to the CR_TEXT challenge its
 * deferred user-pass-verify put to it. Not a plugin event: the source hands the answer to the
 * plugin waiting in `challenge()`, and the deferred user-pass-verify answers OpenVPN.
 */
export interface CrResponseEvent extends Pick<ClientIdentity, 'commonName' | 'realAddress' | 'realPort'> {
  readonly name: 'client-crresponse';
  readonly instance: string;
  readonly source: EventSource;
  /** The decoded answer (client-controlled text), or undefined when it is not base64 of UTF-8 text. */
  readonly response: string | undefined;
}

export interface EventMap {
  up: UpEvent;
  down: DownEvent;
  'route-up': RouteUpEvent;
  'route-pre-down': RoutePreDownEvent;
  ipchange: IpChangeEvent;
  'tls-verify': TlsVerifyEvent;
  'user-pass-verify': UserPassVerifyEvent;
  'client-connect': ClientConnectEvent;
  'client-disconnect': ClientDisconnectEvent;
  'learn-address': LearnAddressEvent;
}

export type AnyEvent = EventMap[EventName];

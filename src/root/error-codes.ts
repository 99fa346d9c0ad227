/**
 * @module error-codes
 * The stable error codes raised in src/root, each declared once with what it means. src/errors.ts
 * merges them with the daemon's codes into the product's one registry, and docs/errors.md says
 * what an operator does about each. They live here, not in src/errors.ts, because the root stage
 * imports nothing outside src/root. This module imports nothing at all.
 */

/** One stable error code: what it means, and the exit status when it ends a command. */
export interface ErrorCodeInfo {
  readonly code: `FXS_${string}`;
  readonly meaning: string;
  readonly exit?: number;
}

type Registry = Readonly<Record<string, ErrorCodeInfo>>;

/** The code values of a registry, by name: `{ BUSY: 'FXS_ROOT_BUSY', ... }`. */
export type CodesOf<T extends Registry> = { readonly [K in keyof T]: T[K]['code'] };

export function codesOf<T extends Registry>(registry: T): CodesOf<T> {
  return Object.fromEntries(Object.entries(registry).map(([name, info]) => [name, info.code])) as CodesOf<T>;
}

/** Codes of the root pipe: the first group is sent by the root stage, the last by the daemon's root client. */
export const ROOT_ERROR_CODES = {
  BAD_JSON: { code: 'FXS_ROOT_BAD_JSON', meaning: 'a request line sent to the root stage is not JSON' },
  BAD_REQUEST: { code: 'FXS_ROOT_BAD_REQUEST', meaning: 'a root request lacks a field, has an unknown one, or one of the wrong type' },
  UNKNOWN_ACTION: { code: 'FXS_ROOT_UNKNOWN_ACTION', meaning: 'a root request names an action outside the closed set' },
  TOO_LONG: { code: 'FXS_ROOT_TOO_LONG', meaning: 'a root request line, string or list is longer than the root stage accepts' },
  BAD_ADDRESS: { code: 'FXS_ROOT_BAD_ADDRESS', meaning: 'a root request carries something that is not a single IPv4 or IPv6 address' },
  ADDRESS_REFUSED: {
    code: 'FXS_ROOT_ADDRESS_REFUSED',
    meaning: "a well-formed address that is not a VPN client's (outside vpn-networks, a network or broadcast address, or this host's own)",
  },
  BAD_NETWORK: { code: 'FXS_ROOT_BAD_NETWORK', meaning: 'a root request carries something that is not a network (ADDRESS/PREFIX)' },
  UNKNOWN_GROUP: { code: 'FXS_ROOT_UNKNOWN_GROUP', meaning: 'a firewall group is not in the root config' },
  UNKNOWN_DEVICE: { code: 'FXS_ROOT_UNKNOWN_DEVICE', meaning: 'a route names a device that is not a vpn-interface of the root config' },
  UNKNOWN_TABLE: { code: 'FXS_ROOT_UNKNOWN_TABLE', meaning: 'a route names a routing table not in routes.tables of the root config' },
  ROUTE_REFUSED: {
    code: 'FXS_ROOT_ROUTE_REFUSED',
    meaning: 'a route outside routes.allowed of the root config, a default route, or a route without its device',
  },
  ROUTE_CONFLICT: { code: 'FXS_ROOT_ROUTE_CONFLICT', meaning: 'a route to the same network already exists and was not made by flexscript' },
  NFT_FAILED: { code: 'FXS_ROOT_NFT_FAILED', meaning: 'nft refused a change or a listing' },
  IP_FAILED: { code: 'FXS_ROOT_IP_FAILED', meaning: 'ip refused a route change or a listing' },
  CONNTRACK_FAILED: { code: 'FXS_ROOT_CONNTRACK_FAILED', meaning: "conntrack could not flush a client's connections" },
  TOOL_MISSING: { code: 'FXS_ROOT_TOOL_MISSING', meaning: 'nft, ip or conntrack is not installed where the root stage looks' },
  BUSY: { code: 'FXS_ROOT_BUSY', meaning: 'too much work in flight in the root stage; the request was not started' },
  INTERNAL: { code: 'FXS_ROOT_INTERNAL', meaning: 'an unexpected failure inside the root stage' },
  UNTRUSTED_PATH: {
    code: 'FXS_ROOT_UNTRUSTED_PATH',
    meaning: 'the root stage refuses to start: a file it trusts could be changed by someone but root',
    exit: 78,
  },
  // sent by the daemon's root client
  UNAVAILABLE: { code: 'FXS_ROOT_UNAVAILABLE', meaning: 'the root stage is not running (not started yet, or restarting)' },
  TIMEOUT: { code: 'FXS_ROOT_TIMEOUT', meaning: 'the root stage gave no answer in time' },
  CLOSED: { code: 'FXS_ROOT_CLOSED', meaning: 'the root client was closed (the daemon is stopping)' },
  PROTOCOL: { code: 'FXS_ROOT_PROTOCOL', meaning: 'the root stage wrote a line the daemon cannot read' },
} as const satisfies Registry;

/** Codes raised by files in src/root off the root pipe (the root config, the sudoers drop-in). */
export const ROOT_SETUP_CODES = {
  CONFIG_INVALID: {
    code: 'FXS_CONFIG_INVALID',
    meaning: "a configuration file (the daemon's, a plugin's options in it, or the root stage's) is invalid",
  },
  SUDOERS_INVALID: { code: 'FXS_SUDOERS_INVALID', meaning: 'the sudoers drop-in for the root stage cannot be written or visudo rejects it' },
} as const satisfies Registry;

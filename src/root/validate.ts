/**
 * @module validate
 * Every request is checked again on the root side, whatever the daemon already checked: a line
 * becomes either a fully typed request (parsed addresses, names that exist in the root config)
 * or a refusal with a stable code. Unknown actions and unknown fields are refused; strings are
 * length-bounded; nothing is ever passed on as free text, so shell or nft syntax in a value
 * simply fails to parse.
 *
 * Addresses are more than well-formed: every address a request names (a set element, a
 * conntrack flush, a route's gateway) must be a VPN client's: inside the root config's
 * vpn-networks, not a network's own or broadcast address, and not an address of this host. A
 * route must name one of the vpn-interfaces as its device, so it always leads into the VPN.
 */
import { contains, parseAddress, parseNetwork, widthOf, type HostAddress, type Network } from './ip-address.ts';
import { LIMITS, ROOT_ACTIONS, RootError, RootErrorCode, type RootAction, type RootErrorBody } from './protocol.ts';
import type { RootConfig } from './root-config.ts';

export interface ValidRoute {
  readonly network: Network;
  readonly via?: HostAddress;
  readonly dev?: string;
  readonly table: number;
}

export type ValidRequest =
  | { readonly id: number; readonly action: 'ensure' | 'list' }
  | { readonly id: number; readonly action: 'set-add' | 'set-remove'; readonly group: string; readonly address: HostAddress }
  | { readonly id: number; readonly action: 'route-add' | 'route-remove'; readonly route: ValidRoute }
  | { readonly id: number; readonly action: 'conntrack-flush'; readonly address: HostAddress }
  | {
      readonly id: number;
      readonly action: 'reconcile';
      readonly sets: ReadonlyMap<string, readonly HostAddress[]>;
      readonly routes: readonly ValidRoute[];
      /** Elements left out because they are not VPN client addresses (see clientAddress). */
      readonly skipped: readonly { readonly group: string; readonly address: string; readonly reason: string }[];
    };

/** Whether an address belongs to this host (the root stage asks the kernel; tests stand in). */
export type IsLocalAddress = (address: HostAddress) => boolean;
const noneLocal: IsLocalAddress = () => false;

export type ParsedLine =
  | { readonly ok: true; readonly request: ValidRequest }
  | { readonly ok: false; readonly id: number | null; readonly error: RootErrorBody };

const ROUTE_FIELDS = ['network', 'via', 'dev', 'table'] as const;
const FIELDS: Record<RootAction, readonly string[]> = {
  ensure: [],
  list: [],
  'set-add': ['group', 'address'],
  'set-remove': ['group', 'address'],
  'route-add': ROUTE_FIELDS,
  'route-remove': ROUTE_FIELDS,
  'conntrack-flush': ['address'],
  reconcile: ['sets', 'routes'],
};

/** A value shown in a message: JSON-quoted and cut short, so a hostile value stays one short line. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkFields(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new RootError(RootErrorCode.BAD_REQUEST, `${where}: unknown field ${shown(key)}`);
  }
}

function boundedString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new RootError(RootErrorCode.BAD_REQUEST, `${field}: expected a string, got ${shown(value)}`);
  if (value.length > LIMITS.string) throw new RootError(RootErrorCode.TOO_LONG, `${field}: longer than ${LIMITS.string} characters`);
  return value;
}

function parseGroup(value: unknown, config: RootConfig): string {
  const group = boundedString(value, 'group');
  if (!config.groups.has(group)) throw new RootError(RootErrorCode.UNKNOWN_GROUP, `group ${shown(group)} is not in the root config`);
  return group;
}

function parseHost(value: unknown): HostAddress {
  boundedString(value, 'address');
  const address = parseAddress(value);
  if (address.bits === 0n) throw new RootError(RootErrorCode.BAD_ADDRESS, `${address.text} is the unspecified address`);
  return address;
}

/**
 * An address a request may act on: a VPN client's. Refused (ADDRESS_REFUSED) when outside
 * every vpn-network (loopback, multicast, the server's public address, other hosts), when it
 * is a network's own address, its first host (OpenVPN's `server` and `server-ipv6` keep it for
 * the server itself, whether or not its device is up) or its IPv4 broadcast, or when an
 * interface of this host that is up holds it.
 */
function clientAddress(address: HostAddress, config: RootConfig, isLocal: IsLocalAddress): HostAddress {
  const home = config.vpnNetworks.find((n) => contains(n, address));
  if (!home) {
    throw new RootError(
      RootErrorCode.ADDRESS_REFUSED,
      `${address.text} is not inside vpn-networks (${config.vpnNetworks.map((n) => n.text).join(', ')}) of ${config.file}`,
    );
  }
  const hostBits = widthOf(home.family) - home.prefix;
  if (hostBits >= 2) {
    const host = address.bits & ((1n << BigInt(hostBits)) - 1n);
    if (host === 0n) throw new RootError(RootErrorCode.ADDRESS_REFUSED, `${address.text} is the network address of ${home.text}, not a client's`);
    if (host === 1n)
      throw new RootError(
        RootErrorCode.ADDRESS_REFUSED,
        `${address.text} is the first address of ${home.text}, which OpenVPN gives the server itself, not a client's`,
      );
    if (home.family === 4 && host === (1n << BigInt(hostBits)) - 1n) {
      throw new RootError(RootErrorCode.ADDRESS_REFUSED, `${address.text} is the broadcast address of ${home.text}, not a client's`);
    }
  }
  if (isLocal(address)) throw new RootError(RootErrorCode.ADDRESS_REFUSED, `${address.text} is an address of this host (the server), not a client's`);
  return address;
}

/** Checks one route against the root config: allowed parent, a VPN device and gateway, known table, never /0. */
export function parseRoute(value: unknown, config: RootConfig, where = 'route', isLocal: IsLocalAddress = noneLocal): ValidRoute {
  if (!isPlainObject(value)) throw new RootError(RootErrorCode.BAD_REQUEST, `${where}: expected an object`);
  checkFields(value, ROUTE_FIELDS, where);
  if (value.network === undefined) throw new RootError(RootErrorCode.BAD_REQUEST, `${where}: network is required`);
  const network = parseNetwork(boundedString(value.network, 'network'));
  if (network.prefix === 0) throw new RootError(RootErrorCode.ROUTE_REFUSED, `${network.text}: a default route is never allowed`);
  if (!config.routes.allowed.some((parent) => contains(parent, network))) {
    throw new RootError(RootErrorCode.ROUTE_REFUSED, `${network.text} is not inside any network in routes.allowed of the root config`);
  }
  let via: HostAddress | undefined;
  if (value.via !== undefined) {
    via = parseHost(value.via);
    if (via.family !== network.family) throw new RootError(RootErrorCode.BAD_ADDRESS, `via ${via.text} is not of the same family as ${network.text}`);
  }
  // without a device the kernel picks one for the gateway, which could lead out of the VPN
  if (value.dev === undefined) {
    throw new RootError(RootErrorCode.ROUTE_REFUSED, `${where}: a route must name its device, one of vpn-interfaces (${config.vpnInterfaces.join(', ')})`);
  }
  const dev = boundedString(value.dev, 'dev');
  if (!config.vpnInterfaces.includes(dev)) throw new RootError(RootErrorCode.UNKNOWN_DEVICE, `device ${shown(dev)} is not a vpn-interface of the root config`);
  if (via) clientAddress(via, config, isLocal);
  const table = value.table === undefined ? config.routes.tables[0] : value.table;
  if (typeof table !== 'number' || !config.routes.tables.includes(table)) {
    throw new RootError(RootErrorCode.UNKNOWN_TABLE, `table ${shown(table)} is not in routes.tables of the root config`);
  }
  return { network, table, ...(via ? { via } : {}), dev };
}

export function routeKey(route: { readonly network: Network | { readonly text: string }; readonly table: number }): string {
  return `${route.table} ${route.network.text}`;
}

function parseReconcile(
  obj: Record<string, unknown>,
  config: RootConfig,
  isLocal: IsLocalAddress,
): { sets: Map<string, HostAddress[]>; routes: ValidRoute[]; skipped: { group: string; address: string; reason: string }[] } {
  if (!isPlainObject(obj.sets)) throw new RootError(RootErrorCode.BAD_REQUEST, 'sets: expected an object of group: [addresses]');
  if (!Array.isArray(obj.routes)) throw new RootError(RootErrorCode.BAD_REQUEST, 'routes: expected an array');
  const sets = new Map<string, HostAddress[]>();
  // a stray element is left out rather than failing the whole reconcile, which would leave
  // stale elements in place
  const skipped: { group: string; address: string; reason: string }[] = [];
  for (const [key, list] of Object.entries(obj.sets)) {
    const group = parseGroup(key, config);
    if (!Array.isArray(list)) throw new RootError(RootErrorCode.BAD_REQUEST, `sets.${group}: expected an array of addresses`);
    if (list.length > LIMITS.setElements) throw new RootError(RootErrorCode.TOO_LONG, `sets.${group}: more than ${LIMITS.setElements} addresses`);
    const unique = new Map<string, HostAddress>();
    for (const item of list) {
      const address = parseHost(item);
      try {
        clientAddress(address, config, isLocal);
      } catch (err) {
        skipped.push({ group, address: address.text, reason: (err as Error).message });
        continue;
      }
      unique.set(address.text, address);
    }
    sets.set(group, [...unique.values()]);
  }
  if (obj.routes.length > LIMITS.routes) throw new RootError(RootErrorCode.TOO_LONG, `routes: more than ${LIMITS.routes} routes`);
  const routes = new Map<string, ValidRoute>();
  obj.routes.forEach((item, i) => {
    const route = parseRoute(item, config, `routes[${i}]`, isLocal);
    if (routes.has(routeKey(route)))
      throw new RootError(RootErrorCode.BAD_REQUEST, `routes[${i}]: ${route.network.text} is listed twice for table ${route.table}`);
    routes.set(routeKey(route), route);
  });
  return { sets, routes: [...routes.values()], skipped };
}

function parseRequest(obj: Record<string, unknown>, id: number, config: RootConfig, isLocal: IsLocalAddress): ValidRequest {
  const action = obj.action;
  if (typeof action !== 'string' || !(ROOT_ACTIONS as readonly string[]).includes(action)) {
    throw new RootError(RootErrorCode.UNKNOWN_ACTION, `unknown action ${shown(action)}; known: ${ROOT_ACTIONS.join(', ')}`);
  }
  const act = action as RootAction;
  const args = { ...obj };
  delete args.id;
  delete args.action;
  checkFields(args, FIELDS[act], act);
  switch (act) {
    case 'ensure':
    case 'list':
      return { id, action: act };
    case 'set-add':
    case 'set-remove':
      return { id, action: act, group: parseGroup(args.group, config), address: clientAddress(parseHost(args.address), config, isLocal) };
    case 'route-add':
    case 'route-remove':
      return { id, action: act, route: parseRoute(args, config, act, isLocal) };
    case 'conntrack-flush':
      return { id, action: act, address: clientAddress(parseHost(args.address), config, isLocal) };
    case 'reconcile':
      return { id, action: act, ...parseReconcile(args, config, isLocal) };
  }
}

/** Parses and validates one request line; never throws. */
export function parseRequestLine(line: string, config: RootConfig, isLocal: IsLocalAddress = noneLocal): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, id: null, error: { code: RootErrorCode.BAD_JSON, message: 'the request line is not JSON' } };
  }
  if (!isPlainObject(value)) return { ok: false, id: null, error: { code: RootErrorCode.BAD_REQUEST, message: 'a request is a JSON object' } };
  const id = value.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    return { ok: false, id: null, error: { code: RootErrorCode.BAD_REQUEST, message: 'id: expected a non-negative integer' } };
  }
  try {
    return { ok: true, request: parseRequest(value, id, config, isLocal) };
  } catch (err) {
    if (err instanceof RootError) return { ok: false, id, error: { code: err.code, message: err.message } };
    return { ok: false, id, error: { code: RootErrorCode.INTERNAL, message: 'validation failed unexpectedly' } };
  }
}

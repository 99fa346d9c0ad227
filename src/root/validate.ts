/**
 * @module validate
 * Every request is checked again on the root side, whatever the daemon already checked: a line
 * becomes either a fully typed request (parsed addresses, names that exist in the root config)
 * or a refusal with a stable code. Unknown actions and unknown fields are refused; strings are
 * length-bounded; nothing is ever passed on as free text, so shell or nft syntax in a value
 * simply fails to parse.
 */
import { contains, parseAddress, parseNetwork, type HostAddress, type Network } from './ip-address.ts';
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
  | { readonly id: number; readonly action: 'reconcile'; readonly sets: ReadonlyMap<string, readonly HostAddress[]>; readonly routes: readonly ValidRoute[] };

export type ParsedLine = { readonly ok: true; readonly request: ValidRequest } | { readonly ok: false; readonly id: number | null; readonly error: RootErrorBody };

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

export function parseGroup(value: unknown, config: RootConfig): string {
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

/** Checks one route against the root config: allowed parent, known device and table, never /0. */
export function parseRoute(value: unknown, config: RootConfig, where = 'route'): ValidRoute {
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
  let dev: string | undefined;
  if (value.dev !== undefined) {
    dev = boundedString(value.dev, 'dev');
    if (!config.vpnInterfaces.includes(dev)) throw new RootError(RootErrorCode.UNKNOWN_DEVICE, `device ${shown(dev)} is not a vpn-interface of the root config`);
  }
  if (via === undefined && dev === undefined) throw new RootError(RootErrorCode.BAD_REQUEST, `${where}: needs via, dev or both`);
  const table = value.table === undefined ? config.routes.tables[0] : value.table;
  if (typeof table !== 'number' || !config.routes.tables.includes(table)) {
    throw new RootError(RootErrorCode.UNKNOWN_TABLE, `table ${shown(table)} is not in routes.tables of the root config`);
  }
  return { network, table, ...(via ? { via } : {}), ...(dev !== undefined ? { dev } : {}) };
}

export function routeKey(route: { readonly network: Network | { readonly text: string }; readonly table: number }): string {
  return `${route.table} ${route.network.text}`;
}

function parseReconcile(obj: Record<string, unknown>, config: RootConfig): { sets: Map<string, HostAddress[]>; routes: ValidRoute[] } {
  if (!isPlainObject(obj.sets)) throw new RootError(RootErrorCode.BAD_REQUEST, 'sets: expected an object of group: [addresses]');
  if (!Array.isArray(obj.routes)) throw new RootError(RootErrorCode.BAD_REQUEST, 'routes: expected an array');
  const sets = new Map<string, HostAddress[]>();
  for (const [key, list] of Object.entries(obj.sets)) {
    const group = parseGroup(key, config);
    if (!Array.isArray(list)) throw new RootError(RootErrorCode.BAD_REQUEST, `sets.${group}: expected an array of addresses`);
    if (list.length > LIMITS.setElements) throw new RootError(RootErrorCode.TOO_LONG, `sets.${group}: more than ${LIMITS.setElements} addresses`);
    const unique = new Map<string, HostAddress>();
    for (const item of list) {
      const address = parseHost(item);
      unique.set(address.text, address);
    }
    sets.set(group, [...unique.values()]);
  }
  if (obj.routes.length > LIMITS.routes) throw new RootError(RootErrorCode.TOO_LONG, `routes: more than ${LIMITS.routes} routes`);
  const routes = new Map<string, ValidRoute>();
  obj.routes.forEach((item, i) => {
    const route = parseRoute(item, config, `routes[${i}]`);
    if (routes.has(routeKey(route))) throw new RootError(RootErrorCode.BAD_REQUEST, `routes[${i}]: ${route.network.text} is listed twice for table ${route.table}`);
    routes.set(routeKey(route), route);
  });
  return { sets, routes: [...routes.values()] };
}

function parseRequest(obj: Record<string, unknown>, id: number, config: RootConfig): ValidRequest {
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
      return { id, action: act, group: parseGroup(args.group, config), address: parseHost(args.address) };
    case 'route-add':
    case 'route-remove':
      return { id, action: act, route: parseRoute(args, config, act) };
    case 'conntrack-flush':
      return { id, action: act, address: parseHost(args.address) };
    case 'reconcile':
      return { id, action: act, ...parseReconcile(args, config) };
  }
}

/** Parses and validates one request line; never throws. */
export function parseRequestLine(line: string, config: RootConfig): ParsedLine {
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
    return { ok: true, request: parseRequest(value, id, config) };
  } catch (err) {
    if (err instanceof RootError) return { ok: false, id, error: { code: err.code, message: err.message } };
    return { ok: false, id, error: { code: RootErrorCode.INTERNAL, message: 'validation failed unexpectedly' } };
  }
}

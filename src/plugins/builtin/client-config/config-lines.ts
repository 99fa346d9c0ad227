/**
 * @module config-lines
 * Checks the push options and raw config lines an operator writes for users and groups, when
 * the config loads: a typo should fail `flexscript check`, not a client's connect. Each check
 * returns a problem text or undefined. Pure.
 */
import { checkConfigLine, pushLine } from '../../../util/config-lines.ts';
import { parseAddress, parseNetwork } from '../../../util/ip-address.ts';
import { netmaskPrefix } from './vpn-network.ts';

const OPTION_NAME = /^[a-z][a-z0-9-]*$/;

/** What OpenVPN accepts in a client's config (its client-config-dir file), besides push. */
const CLIENT_DIRECTIVES = new Set(['iroute', 'iroute-ipv6', 'push', 'push-reset', 'push-remove', 'disable', 'vlan-pvid', 'echo']);

/** dhcp-option types that take an address. */
const DHCP_ADDRESS = new Set(['DNS', 'DNS6', 'WINS', 'NBDD', 'NTP']);
const DHCP_OTHER = new Set([
  'DOMAIN',
  'DOMAIN-SEARCH',
  'ADAPTER_DOMAIN_SUFFIX',
  'NBT',
  'NBS',
  'DISABLE-NBT',
  'PROXY_HTTP',
  'PROXY_HTTPS',
  'PROXY_BYPASS',
  'PROXY_AUTO_CONFIG_URL',
]);
const ROUTE_KEYWORDS = new Set(['vpn_gateway', 'net_gateway', 'remote_host', 'default']);

function lineSafety(text: string): string | undefined {
  try {
    checkConfigLine(text);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function ipv4(word: string | undefined): boolean {
  try {
    return word !== undefined && parseAddress(word).family === 4;
  } catch {
    return false;
  }
}

/** `NET MASK`, as iroute and route take it: a real netmask, no host bits. */
function networkAndMask(net: string | undefined, mask: string | undefined, what: string): string | undefined {
  if (!ipv4(net)) return `${what}: ${JSON.stringify(net ?? '')} is not an IPv4 network address`;
  const prefix = netmaskPrefix(mask ?? '255.255.255.255');
  if (prefix === undefined) return `${what}: ${JSON.stringify(mask)} is not a netmask`;
  try {
    parseNetwork(`${net}/${prefix}`);
  } catch (err) {
    return `${what}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return undefined;
}

function ipv6Network(word: string | undefined, what: string): string | undefined {
  try {
    if (parseNetwork(word ?? '').family === 6) return undefined;
  } catch (err) {
    return `${what}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return `${what}: ${JSON.stringify(word)} is not an IPv6 network`;
}

/** A `push` option (without `push` and quotes): `route 10.1.0.0 255.255.0.0`, `dhcp-option DNS 10.1.0.53`. */
export function pushProblem(option: string): string | undefined {
  const unsafe = lineSafety(option);
  if (unsafe) return unsafe;
  try {
    pushLine(option);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const [name, ...args] = option.trim().split(/\s+/);
  if (!name || !OPTION_NAME.test(name)) return `${JSON.stringify(name ?? '')} is not an OpenVPN option name`;
  switch (name) {
    case 'ifconfig':
    case 'ifconfig-ipv6':
      return `do not push ${name}: give the user an address (address: / address6:)`;
    case 'route':
      if (args.length < 1 || args.length > 4) return 'route takes NETWORK [NETMASK [GATEWAY [METRIC]]]';
      if (ROUTE_KEYWORDS.has(args[0]!)) return undefined;
      return networkAndMask(args[0], args[1], 'route');
    case 'route-ipv6':
      if (args.length < 1 || args.length > 3) return 'route-ipv6 takes NETWORK/BITS [GATEWAY [METRIC]]';
      return ipv6Network(args[0], 'route-ipv6');
    case 'dhcp-option': {
      const [type, value] = args;
      if (type === undefined) return 'dhcp-option needs a type (DNS, DOMAIN, ...)';
      if (DHCP_ADDRESS.has(type)) {
        if (args.length !== 2) return `dhcp-option ${type} takes one address`;
        try {
          const a = parseAddress(value);
          if (type !== 'DNS' && type !== 'DNS6' && a.family !== 4) return `dhcp-option ${type} takes an IPv4 address`;
          if (type === 'DNS6' && a.family !== 6) return 'dhcp-option DNS6 takes an IPv6 address';
        } catch {
          return `dhcp-option ${type}: ${JSON.stringify(value ?? '')} is not an address`;
        }
        return undefined;
      }
      if (!DHCP_OTHER.has(type)) return `dhcp-option ${JSON.stringify(type)} is not a dhcp-option type OpenVPN knows`;
      if (type !== 'DISABLE-NBT' && value === undefined) return `dhcp-option ${type} needs a value`;
      return undefined;
    }
  }
  return undefined;
}

/** A raw config line for the client (`iroute 192.168.10.0 255.255.255.0`). */
export function configProblem(line: string): string | undefined {
  const unsafe = lineSafety(line);
  if (unsafe) return unsafe;
  const [name, ...args] = line.trim().split(/\s+/);
  if (name === 'ifconfig-push' || name === 'ifconfig-ipv6-push') {
    return `${name} is not written by hand: give the user an address (address: / address6:), which is checked against the pool`;
  }
  if (!name || !CLIENT_DIRECTIVES.has(name))
    return `${JSON.stringify(name ?? '')} is not allowed in a client config (${[...CLIENT_DIRECTIVES].join(', ')}; use push: for options sent to the client)`;
  switch (name) {
    case 'iroute':
      if (args.length < 1 || args.length > 2) return 'iroute takes NETWORK [NETMASK]';
      return networkAndMask(args[0], args[1], 'iroute');
    case 'iroute-ipv6':
      if (args.length !== 1) return 'iroute-ipv6 takes NETWORK/BITS';
      return ipv6Network(args[0], 'iroute-ipv6');
    case 'push':
      if (!/^push "[^"]*"$/.test(line.trim())) return 'write push options under push:, not as raw config lines with quotes';
      return pushProblem(line.trim().slice(6, -1));
  }
  return undefined;
}

/**
 * @module openvpn-server-config
 * Reads the VPN network out of OpenVPN's own server config, so static addresses are checked
 * against what OpenVPN will really hand out: `server` (with `nopool`), `ifconfig-pool`,
 * `topology` and `server-ipv6`. Only these directives are read; later ones win, as in OpenVPN.
 * `config` includes are not followed.
 */
import { readFileSync } from 'node:fs';
import { parseOpenVpnConfig } from '../../../util/openvpn-directives.ts';
import { parseAddress, parseNetwork } from '../../../util/ip-address.ts';
import { sourceLocation } from '../../../util/source-location.ts';
import { defaultPool, netmaskPrefix, poolProblem, type Topology, type VpnNetwork } from './vpn-network.ts';

/** The VPN network of an OpenVPN server config text; throws an Error naming the line. */
export function parseServerConfig(text: string, file: string): VpnNetwork {
  let server: { network: string; netmask: string; nopool: boolean; line: number } | undefined;
  let pool: { start: string; end: string; line: number } | undefined;
  let topology: Topology = 'net30';
  let server6: string | undefined;
  for (const { name, args, line } of parseOpenVpnConfig(text)) {
    const at = sourceLocation(file, line);
    switch (name) {
      case 'server':
        if (args.length < 2) throw new Error(`${at}: server needs a network and a netmask`);
        server = { network: args[0]!, netmask: args[1]!, nopool: args.slice(2).includes('nopool'), line };
        break;
      case 'ifconfig-pool':
        if (args.length < 2) throw new Error(`${at}: ifconfig-pool needs a start and an end address`);
        pool = { start: args[0]!, end: args[1]!, line };
        break;
      case 'topology':
        if (args[0] === 'subnet' || args[0] === 'net30') topology = args[0];
        else throw new Error(`${at}: topology ${args[0] ?? ''} is not supported for static addresses (subnet or net30)`);
        break;
      case 'server-ipv6':
        server6 = args[0];
        break;
    }
  }
  if (!server) throw new Error(`${file}: no server directive (a server with an IPv4 pool is needed for static addresses)`);
  const prefix = netmaskPrefix(server.netmask);
  if (prefix === undefined) throw new Error(`${sourceLocation(file, server.line)}: ${server.netmask} is not a netmask`);
  const network = parseNetwork(`${server.network}/${prefix}`);
  if (pool && !server.nopool)
    throw new Error(`${sourceLocation(file, pool.line)}: OpenVPN refuses ifconfig-pool together with server unless server has nopool`);
  const vpn: VpnNetwork = {
    network,
    topology,
    pool: pool ? { start: parseAddress(pool.start), end: parseAddress(pool.end) } : defaultPool(network, topology),
    ...(server6 ? { network6: parseNetwork(server6) } : {}),
  };
  const problem = poolProblem(vpn);
  if (problem) throw new Error(`${file}: ${problem}`);
  return vpn;
}

export function readServerConfig(file: string): VpnNetwork {
  return parseServerConfig(readFileSync(file, 'utf8'), file);
}

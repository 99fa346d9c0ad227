/**
 * @module ip-address
 * IP addresses and networks as parsed values (family, bits, prefix), for any layer. The code
 * lives in src/root/ip-address.ts because the root stage loads nothing from outside src/root;
 * everything else imports it from here.
 */
export { contains, formatBits, parseAddress, parseNetwork, type HostAddress, type Network } from '../root/ip-address.ts';

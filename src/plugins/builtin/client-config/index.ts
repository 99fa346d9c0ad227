/**
 * @module client-config
 * Built-in plugin `client-config`: per-user and per-group client config, in place of OpenVPN's
 * client-config-dir. A client gets the lines of each group it is in (in the order the groups are
 * listed), then its own: a static address (`ifconfig-push`, checked against OpenVPN's pool when
 * the config loads), raw config lines such as `iroute`, and pushed options such as routes and
 * DNS. With `exclusive: true`, a client that is neither a user nor in a group is denied, as with
 * OpenVPN's `ccd-exclusive`. See docs/client-config.md.
 *
 * @example
 * - use: client-config
 *   options:
 *     openvpn-config: /etc/openvpn/server/server.conf
 *     exclusive: true
 *     groups:
 *       staff:
 *         members: { patterns: ["*.staff"] }
 *         push: ["route 10.20.0.0 255.255.0.0", "dhcp-option DNS 10.20.0.53"]
 *       admins:
 *         # clients in group vpn-admins (its users file line, the directory, the config's groups:)
 *         members: { groups: [vpn-admins] }
 *         push: ["route 10.30.0.0 255.255.0.0"]
 *     users:
 *       alice: { address: 10.8.0.10, groups: [staff] }
 */
import { compileGlob, MAX_GLOB_NAME } from '../../../util/glob.ts';
import { optionsSchema, type ClientConfigOptions } from './options.ts';
import type { ClientIdentity, PluginDefinition } from '../../plugin-api.ts';

type Who = Pick<ClientIdentity, 'commonName' | 'username'> & { readonly groups?: readonly string[] };

/**
 * A client's config lines, or undefined when it has no entry at all. The username is the
 * event's, so a verified one (a name the client merely sent is in `env` only): `match:
 * username` and group usernames never see an unverified claim. A name longer than
 * MAX_GLOB_NAME matches no pattern (`onTooLong` hears of it).
 */
export function linesFor(options: ClientConfigOptions, onTooLong?: (name: string) => void): (who: Who) => string[] | undefined {
  const groups = options.groups.map((g) => ({ ...g, patterns: g.patterns.map((p) => compileGlob(p)) }));
  return ({ commonName, username, groups: clientGroups = [] }) => {
    for (const name of [commonName, username]) if (name !== undefined && name.length > MAX_GLOB_NAME) onTooLong?.(name);
    const user = options.users.get(options.match === 'username' ? (username ?? '') : commonName);
    const named = (name: string | undefined) => name !== undefined && name !== '';
    const member = groups.filter(
      (g) =>
        user?.groups.includes(g.name) ||
        g.commonNames.has(commonName) ||
        (named(username) && g.usernames.has(username!)) ||
        g.patterns.some((p) => p(commonName) || (named(username) && p(username!))) ||
        clientGroups.some((c) => g.clientGroups.has(c)),
    );
    if (!user && member.length === 0) return undefined;
    return [...member.flatMap((g) => g.lines), ...(user?.lines ?? [])];
  };
}

const clientConfig: PluginDefinition<ClientConfigOptions> = {
  name: 'client-config',
  options: optionsSchema,
  setup({ options, log }) {
    const lookup = linesFor(options, (name) => log.warn({ length: name.length }, `a name longer than ${MAX_GLOB_NAME} characters matches no group pattern`));
    log.info({ users: options.users.size, groups: options.groups.length, exclusive: options.exclusive }, 'client config loaded');
    return {
      'client-connect': (event, ctx) => {
        // the client's groups so far: its authentication's, the static rules', earlier plugins'
        const lines = lookup({ commonName: event.commonName, username: event.username, groups: ctx.session?.groups });
        if (lines === undefined) {
          if (options.exclusive)
            ctx.deny(
              `no client config for ${options.match === 'username' ? `username ${JSON.stringify(event.username ?? '')}` : JSON.stringify(event.commonName)} (exclusive)`,
            );
          return;
        }
        for (const line of lines) ctx.config(line);
      },
    };
  },
};

export default clientConfig;

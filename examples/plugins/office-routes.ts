/**
 * Pushes routes and DNS to clients by group. A group matches common names by exact name or by
 * a `*` wildcard; every matching group's lines are pushed, in config order.
 */
import type { PluginDefinition } from '../../src/index.ts';

interface Options {
  groups: { name: string; members: string[]; routes: string[]; dns?: string[] }[];
}

/** `10.1.0.0/16` → `10.1.0.0 255.255.0.0`, the form OpenVPN's `route` expects. */
function route(cidr: string): string {
  const [net, bits] = cidr.split('/');
  const n = Number(bits);
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return `route ${net} ${[24, 16, 8, 0].map((s) => (mask >>> s) & 255).join('.')}`;
}

/** `*` matches any run of characters; everything else literally (a common name may hold any character). */
function matches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const literal = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${literal.join('.*')}$`, 's').test(name);
}

export default {
  name: 'office-routes',
  options: (z) =>
    z
      .object({
        groups: z.array(
          z
            .object({
              name: z.string(),
              members: z.array(z.string().min(1)).min(1),
              routes: z.array(z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/([0-9]|[12][0-9]|3[0-2])$/, 'expected IPv4 CIDR such as 10.1.0.0/16')),
              dns: z.array(z.ipv4()).optional(),
            })
            .strict(),
        ),
      })
      .strict(),
  setup: ({ options, log }) => {
    log.info({ groups: options.groups.length }, 'office routes ready');
    return {
      'client-connect': (event, ctx) => {
        for (const group of options.groups) {
          if (!group.members.some((m) => matches(m, event.commonName))) continue;
          for (const r of group.routes) ctx.push(route(r));
          for (const d of group.dns ?? []) ctx.push(`dhcp-option DNS ${d}`);
          ctx.state.set('group', group.name);
        }
      },
    };
  },
} satisfies PluginDefinition<Options>;

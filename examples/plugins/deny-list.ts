/**
 * Refuses listed common names (revoked laptops, departed staff) before they get an address,
 * and tells the client why.
 */
import type { PluginDefinition } from '../../src/index.ts';

export default {
  name: 'deny-list',
  options: (z) => z.object({ names: z.array(z.string()), message: z.string().default('access revoked') }).strict(),
  setup: ({ options }) => {
    const names = new Set(options.names);
    return {
      'client-connect': (event, ctx) => {
        if (names.has(event.commonName)) ctx.deny(`${event.commonName} is on the deny list`, options.message);
      },
    };
  },
} satisfies PluginDefinition<{ names: string[]; message: string }>;

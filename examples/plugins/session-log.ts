/**
 * Appends one JSON line per finished session (who, from where, which address, bytes, duration)
 * to a file: the smallest useful accounting, and a model for plugins that keep per-client state.
 */
import { appendFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PluginDefinition } from '../../src/index.ts';

export default {
  name: 'session-log',
  options: (z) => z.object({ file: z.string() }).strict(),
  setup: ({ options, configDir }) => {
    const file = resolve(configDir, options.file);
    return {
      'client-connect': (_event, ctx) => {
        ctx.state.set('since', Date.now());
      },
      'learn-address': (event, ctx) => {
        if (event.operation !== 'delete') ctx.state?.set('address', event.address);
      },
      'client-disconnect': async (event, ctx) => {
        const record = {
          commonName: event.commonName,
          username: event.username,
          realAddress: event.realAddress,
          vpnAddress: ctx.state.get('address') ?? event.vpnAddress,
          bytesReceived: event.bytesReceived,
          bytesSent: event.bytesSent,
          duration: event.duration,
          connectedAt: ctx.state.get('since'),
        };
        // names and addresses: readable by the daemon's user and group only
        await appendFile(file, `${JSON.stringify(record)}\n`, { mode: 0o640 });
      },
    };
  },
} satisfies PluginDefinition<{ file: string }>;

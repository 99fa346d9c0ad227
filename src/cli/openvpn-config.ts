/**
 * @module openvpn-config
 * `flexscript openvpn-config`: the server lines for the chosen mode.
 */
import { fileURLToPath } from 'node:url';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { EVENT_NAMES } from '../events/event-map.ts';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { closePlugins, loadPlugins } from '../plugins/load-plugins.ts';
import { hookModeLines } from '../sources/hook/openvpn-lines.ts';

/** The hook client shipped with this package. */
export const HOOK_PATH = fileURLToPath(new URL('../../hook/flexscript-hook', import.meta.url));

export async function openvpnConfigCommand(file: string, mode: 'hook' | 'management'): Promise<number> {
  try {
    const loaded = await loadConfig(file);
    const log = createLogger('warn');
    const plugins = await loadPlugins(loaded, log);
    await closePlugins(plugins, log);
    const handled = EVENT_NAMES.filter((e) => plugins.some((p) => typeof p.instance[e] === 'function'));
    if (mode === 'management') {
      process.stderr.write('management mode is not available yet; use --mode hook\n');
      return 1;
    }
    if (!loaded.config.hook) {
      process.stderr.write(`${file}: hook: missing; hook mode needs a hook: section (dir, group)\n`);
      return 1;
    }
    process.stdout.write(`${hookModeLines(loaded.config.hook, handled, HOOK_PATH).join('\n')}\n`);
    return 0;
  } catch (err) {
    const text = err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err);
    process.stderr.write(`${text}\n`);
    return 1;
  }
}

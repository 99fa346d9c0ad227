/**
 * @module check
 * `flexscript check`: validates a config and its plugins without running anything else.
 */
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { closePlugins, loadPlugins } from '../plugins/load-plugins.ts';
import { offlineServices } from '../daemon/services.ts';

export async function checkCommand(file: string): Promise<number> {
  try {
    const loaded = await loadConfig(file);
    const log = createLogger('warn');
    const plugins = await loadPlugins(loaded, log, offlineServices(loaded.config));
    await closePlugins(plugins, log);
    process.stdout.write(`${file}: OK (${plugins.length} plugin(s): ${plugins.map((p) => p.name).join(', ') || 'none'})\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    } else {
      process.stderr.write(`${file}: ${errorMessage(err)}\n`);
    }
    return 1;
  }
}

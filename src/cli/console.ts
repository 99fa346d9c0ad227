/**
 * @module console
 * `flexscript console`: starts the operator console in the browser (src/console) and runs it
 * until SIGTERM or SIGINT.
 */
import { ConfigError, errorMessage, FlexscriptError, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import { createLogger } from '../logger.ts';
import { EXIT } from './exit-codes.ts';

export interface ConsoleOptions {
  readonly config: string;
  readonly listen?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

export async function consoleCommand(o: ConsoleOptions): Promise<number> {
  try {
    const { config } = await loadConfig(o.config);
    const log = createLogger(config.log.level, undefined, config.log.format);
    const { startConsole } = await import('../console/console-server.ts');
    const running = await startConsole(o.config, config, o, log);
    process.stderr.write(`flexscript console: serving ${running.url}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await running.close();
    return EXIT.ok;
  } catch (err) {
    const text = err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err);
    const code = err instanceof FlexscriptError && !(err instanceof ConfigError) ? ` (${err.code})` : '';
    process.stderr.write(`flexscript console: ${text}${code}\n`);
    return err instanceof ConfigError ? EXIT.config : EXIT.failure;
  }
}

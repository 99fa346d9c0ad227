/**
 * @module openvpn-config
 * `flexscript openvpn-config`: the server lines for the chosen mode.
 */
import { fileURLToPath } from 'node:url';
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { EVENT_NAMES, type EventName } from '../events/event-map.ts';
import type { HookConfig } from '../config/config-schema.ts';
import { loadConfig } from '../config/load-config.ts';
import { pino } from 'pino';
import { createLogger } from '../logger.ts';
import { closePlugins, loadPlugins } from '../plugins/load-plugins.ts';
import { offlineServices } from '../daemon/services.ts';
import { asksChallenges, hookModeLines, sendsPendingNotices, type HookLineOptions } from '../sources/hook/openvpn-lines.ts';
import { managementModeLines } from '../sources/management/openvpn-lines.ts';
import { EXIT } from './exit-codes.ts';

/** The hook client shipped with this package. */
export const HOOK_PATH = fileURLToPath(new URL('../../hook/flexscript-hook', import.meta.url));

/** Quotes a word for OpenVPN's config parser (double quotes, backslash escapes). */
const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Hook mode's lines for OpenVPN: the hooks and the status file, then OpenVPN's tmp-dir, so the
 * deferral files OpenVPN creates are where the daemon can answer in them. With a plugin that asks
 * clients while they wait (totp `mode: dynamic`), user-pass-verify runs in ask mode and the
 * client-crresponse line carries the answers.
 */
export function hookServerLines(hook: HookConfig, handled: readonly EventName[], o: HookLineOptions = {}): string[] {
  const lines = hookModeLines(hook, handled, HOOK_PATH, o);
  if (hook['status-file']) {
    lines.push(
      "# Debian's openvpn-server@.service passes --status .../status-%i.log --status-version 2 on its",
      '# command line, before --config: OpenVPN keeps the last value given, so the two lines above win.',
    );
  }
  if (hook['tmp-dir']) {
    lines.push('# deferral files: in a directory the daemon sees too (systemd gives each service its own /tmp)', `tmp-dir ${quote(hook['tmp-dir'])}`);
  }
  return lines;
}

export async function openvpnConfigCommand(file: string, modeGiven: 'hook' | 'management' | undefined, daemonUser?: string): Promise<number> {
  try {
    const loaded = await loadConfig(file);
    // the config's own mode, when it has one; a config with both sections serves both: say which
    const mode =
      modeGiven ?? (loaded.config.management && !loaded.config.hook ? 'management' : loaded.config.hook && !loaded.config.management ? 'hook' : undefined);
    if (!mode) {
      process.stderr.write(
        `${file}: ${loaded.config.hook ? 'has both hook: and management:' : 'has neither hook: nor management:'}; give --mode hook or --mode management\n`,
      );
      return loaded.config.hook ? EXIT.usage : EXIT.config;
    }
    // stdout carries the OpenVPN lines; plugin warnings go to stderr
    const log = createLogger('warn', pino.destination({ dest: 2, sync: true }));
    const plugins = await loadPlugins(loaded, log, offlineServices(loaded.config));
    await closePlugins(plugins, log);
    const handled = EVENT_NAMES.filter((e) => plugins.some((p) => typeof p.instance[e] === 'function'));
    if (mode === 'management') {
      const { management } = loaded.config;
      if (!management) {
        process.stderr.write(`${file}: management: missing; management mode needs a management: section (instances)\n`);
        return EXIT.config;
      }
      // a web login is the authentication: clients need send no username and password
      const checksPasswords = handled.includes('user-pass-verify') && !sendsPendingNotices(loaded.config.plugins);
      const blocks = management.instances.map((i) => managementModeLines(i, { checksPasswords, daemonUser }).join('\n'));
      process.stdout.write(`${blocks.join('\n\n')}\n`);
      return 0;
    }
    if (!loaded.config.hook) {
      process.stderr.write(`${file}: hook: missing; hook mode needs a hook: section (dir, group)\n`);
      return EXIT.config;
    }
    process.stdout.write(
      `${hookServerLines(loaded.config.hook, handled, { challenges: asksChallenges(loaded.config.plugins), pendingNotices: sendsPendingNotices(loaded.config.plugins) }).join('\n')}\n`,
    );
    return 0;
  } catch (err) {
    const text = err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : errorMessage(err);
    process.stderr.write(`${text}\n`);
    return err instanceof ConfigError ? EXIT.config : EXIT.failure;
  }
}

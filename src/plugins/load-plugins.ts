/**
 * @module load-plugins
 * Loads the plugins listed in the config: imports each module (built-ins as compiled JavaScript,
 * plugin files through tsx, so an operator's TypeScript needs no build step),
 * checks its shape and handler names, validates its options with its own schema, and runs its
 * setup under a time limit. Every failure becomes a `FILE:LINE: field: problem` entry.
 * Running as root (an operator's `flexscript check` or `openvpn-config`), a plugin module is
 * imported only if root alone can change it, by the root stage's rules.
 */
import { existsSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError, errorMessage, type ConfigProblem } from '../errors.ts';
import { isEventName } from '../events/event-map.ts';
import type { LoadedConfig } from '../config/load-config.ts';
import type { Logger } from '../logger.ts';
import type { PluginDefinition, PluginInstance, RootActions, Services, WebLoginStates } from './plugin-api.ts';
import { withTimeout } from './time-limit.ts';
import { findUntrustedPaths } from '../root/trusted-paths.ts';
import { importPluginFile } from './typescript-plugins.ts';

export interface LoadedPlugin {
  readonly name: string;
  readonly path: string;
  /** Time limit of one handler call, in ms. */
  readonly timeoutMs: number;
  readonly instance: PluginInstance;
}

const HERE = fileURLToPath(import.meta.url);

/** Built-in plugins by their `use:` name: each is a folder under builtin/ whose index module is the plugin. */
const BUILTINS: readonly string[] = [
  'accounting',
  'client-config',
  'exec',
  'firewall',
  'ldap-auth',
  'password-auth',
  'routes',
  'session-limit',
  'totp',
  'web-login',
];

/** `.js` in dist/, where the product runs from; `.ts` when the sources run directly (tests). */
const BUILTIN_EXT = extname(HERE);

/** The module of a built-in plugin. */
const builtinPath = (name: string) => join(dirname(HERE), 'builtin', name, `index${BUILTIN_EXT}`);

function isDefinition(value: unknown): value is PluginDefinition<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as PluginDefinition).name === 'string' &&
    typeof (value as PluginDefinition).setup === 'function'
  );
}

/**
 * A built-in is part of the product: imported as it is, once (it does not change while the
 * daemon runs). A plugin file is imported afresh through tsx; a file outside an ES-module
 * package loads as CommonJS, where the default export sits one level deeper.
 */
async function importPlugin(path: string, builtin: boolean): Promise<unknown> {
  const mod = builtin ? ((await import(pathToFileURL(path).href)) as { default?: unknown }) : await importPluginFile(path);
  const def = mod.default as { default?: unknown } | undefined;
  return isDefinition(def) ? def : def?.default;
}

export async function closePlugins(plugins: readonly LoadedPlugin[], log: Logger): Promise<void> {
  for (const p of [...plugins].reverse()) {
    try {
      await p.instance.close?.();
    } catch (err) {
      log.warn({ plugin: p.name, err: errorMessage(err) }, 'plugin close failed');
    }
  }
}

/** Problems listed in one line before the rest are only counted. */
const MAX_TRUST_PROBLEMS = 5;

/**
 * Why root must not import this plugin, or undefined when it may (or when not root). Importing
 * runs the module's code: if another user can change the file, its folder (relative imports,
 * package.json) or any folder above it, that user runs code as root. Same rules as the root
 * stage: owned by root, not writable by group or others, up to `/`.
 */
async function untrustedForRoot(path: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0 || !existsSync(path)) return undefined;
  const problems = await findUntrustedPaths([dirname(path), path]);
  if (problems.length === 0) return undefined;
  const listed = problems.slice(0, MAX_TRUST_PROBLEMS).map((p) => `${p.path}: ${p.problem}`);
  const more = problems.length > MAX_TRUST_PROBLEMS ? ` (and ${problems.length - MAX_TRUST_PROBLEMS} more)` : '';
  return (
    `plugin file ${path} not loaded: running as root, flexscript imports no code another user can change ` +
    `(${listed.join('; ')}${more}); chown root:root and chmod go-w them, or run this command as the daemon's user`
  );
}

/**
 * What a plugin's setup gets: the services' interface members and nothing else, so the object
 * behind them (the daemon's, with its root client and store) is out of a plugin's reach.
 */
export function pluginServices(services: Services): Services {
  const { root, rootRules, records, webLogins, sessions } = services;
  const actions: RootActions | undefined = root && {
    setAdd: (group, address) => root.setAdd(group, address),
    setRemove: (group, address) => root.setRemove(group, address),
    routeAdd: (route) => root.routeAdd(route),
    routeRemove: (route) => root.routeRemove(route),
    conntrackFlush: (address) => root.conntrackFlush(address),
    ...(root.tableStatus && { tableStatus: () => root.tableStatus!() }),
    ...(root.tableSettled && { tableSettled: (signal?: AbortSignal) => root.tableSettled!(signal) }),
  };
  return {
    root: actions,
    rootRules: rootRules && (() => rootRules()),
    records,
    ...(webLogins && {
      webLogins: {
        open: (login) => webLogins.open(login),
        start: (id, secrets, now) => webLogins.start(id, secrets, now),
        claim: (state) => webLogins.claim(state),
        settle: (id, outcome) => webLogins.settle(id, outcome),
        take: (owner, ids) => webLogins.take(owner, ids),
        end: (id) => webLogins.end(id),
        sweep: (now) => webLogins.sweep(now),
      } satisfies WebLoginStates,
    }),
    sessions: { list: () => sessions.list() },
    kill: (session, reason) => services.kill(session, reason),
  };
}

const INSTANCE_EXTRAS = new Set(['check', 'close', 'counters', 'decided', 'kernelState', 'sessionsRebuilt', 'verifiesUsernames']);

/** Loads every enabled plugin, or throws a ConfigError listing every problem (nothing is kept). */
export async function loadPlugins(loaded: LoadedConfig, log: Logger, daemonServices: Services): Promise<LoadedPlugin[]> {
  const { config } = loaded;
  const services = pluginServices(daemonServices);
  const plugins: LoadedPlugin[] = [];
  const problems: ConfigProblem[] = [];
  const names = new Set<string>();
  const at = (i: number, field: string, problem: string) =>
    problems.push(...loaded.problems([{ code: 'custom', path: [field], message: problem, input: undefined }], ['plugins', i]));

  for (const [i, entry] of config.plugins.entries()) {
    if (!entry.enabled) continue;
    let path: string;
    // a built-in's problems name the line that names it
    const source = entry.use !== undefined ? 'use' : 'path';
    if (entry.use !== undefined) {
      if (!BUILTINS.includes(entry.use)) {
        at(i, 'use', `no built-in plugin named ${entry.use} (built-ins: ${BUILTINS.join(', ')})`);
        continue;
      }
      path = builtinPath(entry.use);
    } else {
      path = resolve(loaded.dir, entry.path!);
      const untrusted = await untrustedForRoot(path);
      if (untrusted) {
        at(i, 'path', untrusted);
        continue;
      }
    }
    let def: unknown;
    try {
      def = await importPlugin(path, entry.use !== undefined);
    } catch (err) {
      at(i, source, `cannot load ${path}: ${errorMessage(err)}`);
      continue;
    }
    if (!isDefinition(def)) {
      at(i, source, `${path} must export default a plugin definition ({ name, setup })`);
      continue;
    }
    const name = entry.name ?? def.name;
    if (names.has(name)) {
      at(i, 'name', `plugin name ${JSON.stringify(name)} is used twice; set a distinct name`);
      continue;
    }
    names.add(name);

    let options: unknown = entry.options;
    if (def.options) {
      const schema = def.options(z);
      const parsed = schema.safeParse(entry.options);
      if (!parsed.success) {
        problems.push(...loaded.problems(parsed.error.issues, ['plugins', i, 'options'], schema));
        continue;
      }
      options = parsed.data;
    } else if (entry.options !== undefined) {
      at(i, 'options', `plugin ${name} takes no options`);
      continue;
    }

    const plog = log.child({ plugin: name });
    let instance: PluginInstance;
    try {
      instance = await withTimeout(config.pipeline['setup-timeout'], (signal) =>
        def.setup({ options, log: plog, instance: config.instance, configDir: loaded.dir, signal, services }),
      );
    } catch (err) {
      at(i, source, `plugin ${name} setup failed: ${errorMessage(err)}`);
      continue;
    }
    const unknown = Object.keys(instance ?? {}).filter((k) => !INSTANCE_EXTRAS.has(k) && !isEventName(k));
    if (typeof instance !== 'object' || instance === null || unknown.length > 0) {
      at(i, source, `plugin ${name} returned unknown hook(s): ${unknown.join(', ') || typeof instance}`);
      await instance?.close?.();
      continue;
    }
    plugins.push({ name, path, timeoutMs: entry.timeout ?? config.pipeline.timeout, instance });
  }

  if (problems.length > 0) {
    await closePlugins(plugins, log);
    throw new ConfigError(problems);
  }
  return plugins;
}

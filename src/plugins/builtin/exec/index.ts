/**
 * @module exec
 * Built-in plugin `exec`: an existing OpenVPN hook script runs as a plugin, with what OpenVPN
 * would give it: the event's env (plus `script_type`), the event's arguments, and the temporary
 * files (client-connect's config file, whose lines become this client's config after exit 0;
 * user-pass-verify's via-file credentials, mode 0600). The exit code decides as in OpenVPN:
 * non-zero denies client-connect, user-pass-verify and tls-verify, and vetoes learn-address
 * add/update; other events only log it. A script over its time limit is killed with its whole
 * process group and the client is denied. A run ends at the script's exit even when a process it
 * left in a session of its own still holds its output; the concurrency slot and the run's
 * temporary folder are freed however the run ends. Deferral (client_connect_deferred_file,
 * auth_control_file) is not offered: the daemon already keeps OpenVPN free while the script
 * runs. See docs/migrating-from-scripts.md.
 *
 * @example
 * - use: exec
 *   timeout: 15s
 *   options:
 *     path: /etc/openvpn/scripts/connect.sh
 *     events: [client-connect, client-disconnect]
 *     timeout: 10s
 *     concurrency: 4
 */
import { existsSync, accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z as Z } from 'zod';
import { duration } from '../../../util/duration.ts';
import { Semaphore } from '../../../util/semaphore.ts';
import {
  EVENT_NAMES,
  type AnyEvent,
  type ConnectContext,
  type DecisionContext,
  type EventName,
  type Handler,
  type PluginDefinition,
  type PluginInstance,
} from '../../plugin-api.ts';
import { runScript } from './run-script.ts';

function optionsSchema(z: typeof Z) {
  return z
    .object({
      /** The executable; relative to the config's folder. Run directly, never through a shell. */
      path: z.string().min(1),
      events: z.array(z.enum(EVENT_NAMES)).min(1),
      /** Per run; the plugin's own `timeout` in the pipeline must be longer (it includes queueing). */
      timeout: duration.default(10_000),
      /** Runs at once; more wait in order. */
      concurrency: z.number().int().min(1).max(256).default(4),
      /** How user-pass-verify gets the credentials, as OpenVPN's auth-user-pass-verify method. */
      'user-pass': z.enum(['via-file', 'via-env']).default('via-file'),
      /** Where the temporary files go (each run gets a private folder). */
      'tmp-dir': z.string().optional(),
    })
    .strict();
}

type ExecOptions = Z.output<ReturnType<typeof optionsSchema>>;

/** Env variables of OpenVPN's deferral files: the daemon's, never the script's. */
const DEFERRAL_VARS = ['client_connect_deferred_file', 'auth_control_file', 'auth_pending_file', 'auth_failed_reason_file'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Invocation {
  readonly args: string[];
  readonly env: Record<string, string>;
  /** Files to write before the run: path → content (mode 0600). */
  readonly files: Record<string, string>;
  /** client-connect: the file whose lines become config lines. */
  readonly configFile?: string;
}

/** argv and env for one event, as OpenVPN builds them; `dir` is this run's private folder. */
function invocation(event: AnyEvent, dir: string, userPass: 'via-file' | 'via-env'): Invocation {
  const env: Record<string, string> = { ...event.env };
  for (const v of DEFERRAL_VARS) delete env[v];
  env.script_type = event.name;
  env.PATH ??= DEFAULT_PATH;
  const files: Record<string, string> = {};
  const num = (n: number | undefined) => (n === undefined ? '' : String(n));
  switch (event.name) {
    case 'up':
    case 'down':
    case 'route-pre-down':
      return { env, files, args: [event.dev, num(event.tunMtu), '0', event.ifconfigLocal ?? '', event.ifconfigRemoteOrNetmask ?? '', event.phase ?? 'init'] };
    case 'route-up':
      return { env, files, args: [...event.args] };
    case 'ipchange':
      return { env, files, args: [event.address, num(event.port)] };
    case 'tls-verify':
      return { env, files, args: [String(event.depth), event.subject] };
    case 'user-pass-verify': {
      env.username = event.username;
      if (userPass === 'via-env') {
        env.password = event.password;
        return { env, files, args: [] };
      }
      delete env.password;
      const file = join(dir, 'credentials');
      files[file] = `${event.username}\n${event.password}\n`;
      return { env, files, args: [file] };
    }
    case 'client-connect': {
      const file = join(dir, 'client-config');
      files[file] = '';
      env.client_connect_config_file = file;
      return { env, files, args: [file], configFile: file };
    }
    case 'client-disconnect':
      return { env, files, args: [] };
    case 'learn-address':
      return { env, files, args: [event.operation, event.address, ...(event.commonName !== undefined ? [event.commonName] : [])] };
  }
}

/** Config lines a script wrote: blank lines and comments dropped, each line checked by ctx.config. */
function scriptConfigLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
}

const exec: PluginDefinition<ExecOptions> = {
  name: 'exec',
  options: optionsSchema,
  setup({ options, configDir, log }) {
    const path = resolve(configDir, options.path);
    if (!existsSync(path)) throw new Error(`${path} does not exist`);
    accessSync(path, constants.X_OK);
    const slots = new Semaphore(options.concurrency);
    const base = options['tmp-dir'] ?? tmpdir();

    const run = async (event: AnyEvent, ctx: { signal: AbortSignal } & Partial<ConnectContext>) => {
      return slots.run(async () => {
        const dir = await mkdtemp(join(base, 'flexscript-exec-'));
        try {
          const inv = invocation(event, dir, options['user-pass']);
          for (const [file, content] of Object.entries(inv.files)) await writeFile(file, content, { mode: 0o600 });
          const started = performance.now();
          const result = await runScript({
            path,
            args: inv.args,
            env: inv.env,
            timeoutMs: options.timeout,
            signal: ctx.signal,
            output: (stream, line) => log.info({ stream, line, event: event.name }, 'script output'),
          });
          const ms = Math.round(performance.now() - started);
          const lines = inv.configFile && result.code === 0 ? scriptConfigLines(await readFile(inv.configFile, 'utf8')) : [];
          return { ...result, ms, lines };
        } finally {
          // retried: a process the script left behind may still be writing into it
          await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        }
      }, ctx.signal);
    };

    const handlers: Record<string, Handler<EventName>> = {};
    for (const name of new Set(options.events)) {
      handlers[name] = async (event: AnyEvent, ctx: unknown) => {
        const c = ctx as DecisionContext & Partial<ConnectContext>;
        const r = await run(event, c);
        const why = r.timedOut
          ? `script ran longer than ${options.timeout} ms and was killed`
          : r.aborted
            ? 'script stopped: time limit of the plugin'
            : `script exited with code ${r.code}`;
        const decides =
          name === 'client-connect' ||
          name === 'user-pass-verify' ||
          name === 'tls-verify' ||
          (name === 'learn-address' && (event as { operation?: string }).operation !== 'delete');
        if (r.code !== 0) {
          if (decides) return c.deny(why);
          log.warn({ event: name, code: r.code, timedOut: r.timedOut, ms: r.ms }, why);
          return;
        }
        for (const line of r.lines) c.config!(line);
      };
    }
    // an auth-user-pass-verify script verifies usernames, as it does for OpenVPN
    return { ...handlers, ...(handlers['user-pass-verify'] ? { verifiesUsernames: true } : {}) } as PluginInstance;
  },
};

export default exec;

/**
 * @module config-schema
 * The schema of `flexscript.yaml`. One zod schema gives both the types and the validation;
 * every object is strict, so an unknown key is an error rather than silently ignored.
 */
import { z } from 'zod';
import { EVENT_NAMES, type EventName } from '../events/event-map.ts';
import { storeConfigSchema } from '../store/store-config.ts';
import { consoleConfigSchema } from './console-schema.ts';
import { duration } from '../util/duration.ts';

const fileMode = z
  .string({ error: 'write the mode as a quoted octal string, e.g. "0770"' })
  .regex(/^0?[0-7]{3}$/, 'expected an octal mode such as "0770"')
  .transform((s) => Number.parseInt(s, 8));

const groupName = z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'not a group name');

/** What the hook client does for one event when the daemon cannot be reached. */
const hookEvent = z
  .object({
    /** deny (fail closed) or allow the client when the daemon is unreachable. */
    'on-unreachable': z.enum(['deny', 'allow']).optional(),
    /** Wait for the daemon's answer (and its veto) instead of handing the event over and returning. */
    wait: z.boolean().optional(),
  })
  .strict();

const hookEvents = z
  .object({
    ...(Object.fromEntries(EVENT_NAMES.map((n) => [n, hookEvent.optional()])) as Record<EventName, z.ZodOptional<typeof hookEvent>>),
    'user-pass-verify': hookEvent
      .extend({
        /** How OpenVPN hands over username and password: a file (default), or the environment (needs script-security 3). */
        method: z.enum(['via-file', 'via-env']).optional(),
      })
      .optional(),
  })
  .strict();

const hook = z
  .object({
    /** Runtime directory shared with OpenVPN: spool, ring pipe, reply pipes, pid file. */
    dir: z.string().startsWith('/', 'must be an absolute path'),
    /** Group that may hand events over (OpenVPN's group); the daemon must be a member. */
    group: groupName.optional(),
    mode: fileMode.default(0o770),
    /** How long a waiting hook waits for the daemon before applying on-unreachable. */
    timeout: duration.default(5000),
    /**
     * OpenVPN's status file (`status FILE` with `status-version 3`): after a restart the daemon
     * reads the live clients from it, so firewall sets and routes stay right.
     */
    'status-file': z.string().startsWith('/', 'must be an absolute path').optional(),
    /**
     * OpenVPN's `tmp-dir`: where OpenVPN creates the deferral files the daemon answers in. Must
     * be one directory both see (not /tmp: systemd's PrivateTmp gives each service its own).
     * `openvpn-config` prints it and `check` compares it with OpenVPN's config.
     */
    'tmp-dir': z.string().startsWith('/', 'must be an absolute path').optional(),
    /**
     * Where plugins' learn-address events come from. `hook`: OpenVPN's learn-address hook (adds,
     * updates, deletes, iroute networks, a veto when waiting). `connect`: no such hook; the
     * daemon reports an accepted client's addresses as adds, as in management mode, and its
     * disconnect ends them. One process fewer per client, which counts in a reconnect storm.
     */
    'learn-address': z.enum(['hook', 'connect']).default('hook'),
    events: hookEvents.default({}),
  })
  .strict();

const instanceName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only');

/** One OpenVPN server reached through its management interface. */
const managementInstance = z
  .object({
    /** Names this OpenVPN server in logs, records and commands. */
    name: instanceName,
    /** OpenVPN's `management /path unix` socket... */
    socket: z.string().startsWith('/', 'must be an absolute path').optional(),
    /** ...or its loopback TCP address (`management 127.0.0.1 PORT`). */
    host: z.enum(['127.0.0.1', '::1', 'localhost'], { error: 'management over TCP must stay on loopback' }).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** File holding the management password (OpenVPN's `management ... PWFILE`). */
    'password-file': z.string().startsWith('/', 'must be an absolute path').optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.socket === undefined && m.port === undefined) ctx.addIssue({ code: 'custom', path: ['socket'], message: 'give socket, or host and port' });
    if (m.socket !== undefined && m.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'give socket or port, not both' });
  });

const management = z
  .object({
    instances: z.array(managementInstance).min(1, 'list at least one OpenVPN instance'),
    /** Time limit for OpenVPN to confirm an answer or a command. */
    'command-timeout': duration.default(10_000),
    /**
     * OpenVPN 2.6 applies a client-auth only at the client's next timer, about a second later.
     * A nudge (an empty client-pending-auth after the client-auth) makes OpenVPN process the
     * client at once; the client logs an AUTH_PENDING notice. `auto` nudges connects that come
     * in a burst (a reconnect storm), true nudges every connect, false none.
     */
    'fast-push': z.union([z.boolean(), z.literal('auto')]).default('auto'),
    /** The daemon's own management socket for other tools (OpenVPN accepts one client). */
    'pass-through': z
      .object({
        socket: z.string().startsWith('/', 'must be an absolute path'),
        group: groupName.optional(),
        mode: fileMode.default(0o660),
        /** Let pass-through clients disconnect clients (client-kill, flexscript kill). */
        'allow-kill': z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.instances.forEach((inst, i) => {
      if (seen.has(inst.name)) ctx.addIssue({ code: 'custom', path: ['instances', i, 'name'], message: `instance name ${inst.name} is used twice` });
      seen.add(inst.name);
    });
  });

const pluginEntry = z
  .object({
    /** A .ts or .js module; relative paths are resolved against this file's folder. */
    path: z.string().min(1).optional(),
    /** A built-in plugin by name (firewall, routes, accounting, ...), instead of `path`. */
    use: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,63}$/, 'a built-in plugin name such as firewall')
      .optional(),
    /** Overrides the plugin's own name in logs (useful when one module is listed twice). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only')
      .optional(),
    /** Time limit for one handler call; a plugin that exceeds it denies that client. */
    timeout: duration.optional(),
    enabled: z.boolean().default(true),
    /** Validated by the plugin's own schema when it loads. */
    options: z.unknown().optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.path === undefined && p.use === undefined)
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'give path (your plugin) or use (a built-in plugin)' });
    if (p.path !== undefined && p.use !== undefined) ctx.addIssue({ code: 'custom', path: ['use'], message: 'give path or use, not both' });
  });

/** The root stage, for plugins that change firewall sets and routes. */
const root = z
  .object({
    /** The root stage's own config, owned by root: groups' rules, interfaces, route limits. */
    config: z.string().startsWith('/', 'must be an absolute path').default('/etc/flexscript/root.yaml'),
    /** The command that starts the root stage; default `sudo -n <flexscript-root> --config CONFIG`. */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** Time limit of one root-stage action. */
    timeout: duration.default(10_000),
  })
  .strict();

/**
 * Static group rules: who is in a group besides those whoever authenticated them put there.
 * Group names are free text, as directories name groups (spaces, capitals), compared exactly.
 */
const groupRules = z.record(
  z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'a group name has no control characters'),
  z
    .object({
      /** Exact certificate common names. */
      'common-names': z.array(z.string().min(1).max(64)).default([]),
      /** Exact usernames, verified ones only (a plugin such as password-auth accepted them). */
      usernames: z.array(z.string().min(1).max(256)).default([]),
      /** Globs (`*`, `?`) matched against the whole common name and the whole verified username. */
      patterns: z.array(z.string().min(1).max(128)).default([]),
    })
    .strict(),
);

const absolutePath = z.string().startsWith('/', 'must be an absolute path');

/** 127.0.0.0/8, ::1 or localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Prometheus metrics at `GET /metrics`, on loopback TCP or on a unix socket. */
const metrics = z
  .object({
    host: z
      .string()
      .refine(isLoopback, 'must be a loopback address (127.0.0.1, ::1, localhost): metrics are not served beyond this machine')
      .default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).optional(),
    /** A unix socket instead of TCP; group and mode decide who may scrape. */
    socket: absolutePath.optional(),
    group: groupName.optional(),
    mode: fileMode.default(0o660),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.socket === undefined && m.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'give port (loopback TCP) or socket' });
    if (m.socket !== undefined && m.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'give port or socket, not both' });
  });

/** The daemon's own control socket (JSON lines): `flexscript status`, `watch`, the console. */
const control = z
  .object({
    socket: absolutePath,
    group: groupName.optional(),
    mode: fileMode.default(0o660),
    /** Let control clients (the console's operators) disconnect clients; read-only otherwise. */
    'allow-kill': z.boolean().default(false),
  })
  .strict();

export const configSchema = z
  .object({
    /** Names this OpenVPN server in logs and records. */
    instance: instanceName.default('openvpn'),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        /** text: one line a record for people; json: for log shippers; auto: text on a terminal and in the journal. */
        format: z.enum(['auto', 'text', 'json']).default('auto'),
      })
      .strict()
      .default({ level: 'info', format: 'auto' }),
    hook: hook.optional(),
    management: management.optional(),
    pipeline: z
      .object({
        /** Default time limit for one plugin handler call. */
        timeout: duration.default(2000),
        /** Events processed at once; more wait in a queue (backpressure under storms). */
        concurrency: z.number().int().min(1).max(10_000).default(256),
        /** Time limit for a plugin's setup at load. */
        'setup-timeout': duration.default(10_000),
      })
      .strict()
      .default({ timeout: 2000, concurrency: 256, 'setup-timeout': 10_000 }),
    root: root.optional(),
    /** Who makes a username the client sent into identity (groups, client config, limits). */
    identity: z
      .object({
        /**
         * true only when OpenVPN itself checks every username before client-connect (an
         * auth-user-pass-verify script or auth plugin that is not this daemon's). Otherwise a
         * username counts only once a plugin that verifies usernames (password-auth) accepted it.
         */
        'usernames-verified-by-openvpn': z.boolean().default(false),
      })
      .strict()
      .default({ 'usernames-verified-by-openvpn': false }),
    /**
     * Group name → members, e.g. `vpn-admins: { common-names: [alice], usernames: [carol],
     * patterns: ["ops-*"] }`: these groups join those a client's authentication gave it, and
     * every plugin that matches on groups sees them.
     */
    groups: groupRules.default({}),
    /** Accounting store shared by the built-in plugins (accounting, session limits). */
    store: storeConfigSchema.optional(),
    metrics: metrics.optional(),
    control: control.optional(),
    /** The operator console in the browser (`flexscript console`); the daemon ignores it. */
    console: consoleConfigSchema.optional(),
    plugins: z.array(pluginEntry).default([]),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type HookConfig = NonNullable<Config['hook']>;
export type ManagementConfig = NonNullable<Config['management']>;
export type ManagementInstanceConfig = ManagementConfig['instances'][number];
export type MetricsConfig = NonNullable<Config['metrics']>;
export type ControlConfig = NonNullable<Config['control']>;

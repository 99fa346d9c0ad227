/**
 * @module cli
 * `flexscript`: one command with verbs an operator can guess.
 */
import { readFileSync } from 'node:fs';
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import { BENCH_MODES, DEFAULT_BENCH_MODES, type BenchMode } from '../bench/bench-modes.ts';
import { ConfigError, formatProblem } from '../errors.ts';
import { EXIT } from './exit-codes.ts';
import type { SessionsOptions } from './sessions.ts';

// Each verb loads its own modules when it runs: the daemon never loads the demo, the
// benchmark or the lab, and a short command compiles only what it uses.

/** Where every verb reads its configuration unless told otherwise. */
const DEFAULT_CONFIG = '/etc/flexscript/flexscript.yaml';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('flexscript')
  .description('Run OpenVPN event hooks as typed TypeScript plugins in one long-lived daemon.')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Every verb that reads the configuration takes --config FILE; without it, $FLEXSCRIPT_CONFIG, else ${DEFAULT_CONFIG}.
Exit status: 0 ok, 1 failed, 2 usage (the command line), 3 configuration invalid (or check found problems), 4 daemon not reachable.`,
  )
  // a wrong command line exits 2, not 1 (commander's own choice); help and --version exit 0
  .exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  });

/** -c, --config FILE: $FLEXSCRIPT_CONFIG, else /etc/flexscript/flexscript.yaml. */
const configOption = (what = 'configuration file') => new Option('-c, --config <file>', what).env('FLEXSCRIPT_CONFIG').default(DEFAULT_CONFIG);

program
  .command('run')
  .description('run the daemon (SIGHUP reloads, SIGTERM stops)')
  .addOption(configOption())
  .action(async (o: { config: string }) => {
    const { runDaemon } = await import('../daemon/daemon.ts');
    await runDaemon(o.config);
    process.exit(0);
  });

program
  .command('check')
  .description(
    "validate the configuration, plugins (.ts plugins type-checked), sockets, root stage and sudoers (and OpenVPN's config); one line per problem, exit 3 on any",
  )
  .addOption(configOption())
  .option('--openvpn-config <file>', "OpenVPN's server config: check the lines the mode needs")
  .option('--sudoers <file>', 'the sudoers drop-in for the root stage (default: /etc/sudoers.d/flexscript)')
  .option('--daemon-user <user>', "the daemon's user (default: the runtime directory's owner, or OpenVPN's user in hook mode)")
  .option('--openvpn-unit <unit>', "OpenVPN's systemd unit, e.g. openvpn-server@NAME (default: from --openvpn-config's path)")
  .option('--daemon-unit <unit>', "the daemon's systemd unit (default: flexscriptd.service, when installed)")
  .option('--unit-root <dir>', 'read unit files below this directory instead of asking systemd')
  .option('--json', 'print one JSON object (ok, problems, warnings, plugins, checked) instead of lines')
  .action(
    async (o: {
      config: string;
      openvpnConfig?: string;
      sudoers: string;
      daemonUser?: string;
      openvpnUnit?: string;
      daemonUnit?: string;
      unitRoot?: string;
      json?: boolean;
    }) => process.exit(await (await import('./check.ts')).checkCommand(o.config, o)),
  );

program
  .command('openvpn-config')
  .description("print the lines to add to OpenVPN's server config")
  .addOption(configOption())
  .addOption(
    new Option('-m, --mode <mode>', "event source (default: the config's, when it has only hook: or only management:)").choices(['hook', 'management']),
  )
  .option('--daemon-user <user>', 'management mode: the user the daemon runs as (restricts the unix socket)')
  .action(async (o: { config: string; mode?: 'hook' | 'management'; daemonUser?: string }) =>
    process.exit(await (await import('./openvpn-config.ts')).openvpnConfigCommand(o.config, o.mode, o.daemonUser)),
  );

program
  .command('init')
  .description("write a commented starting setup: config, plugins, systemd unit, OpenVPN lines; every file names the same users (OpenVPN's, the daemon's)")
  .requiredOption('-d, --dir <dir>', 'where to write it (e.g. /etc/flexscript)')
  .addOption(new Option('-m, --mode <mode>', 'event source').choices(['hook', 'management']).default('management'))
  .option('--openvpn-user <user>', "the user OpenVPN drops to (its user line; hook mode: the daemon's too) (default: nobody)")
  .option('--openvpn-group <group>', "the group OpenVPN drops to (its group line; hook mode: the daemon's too) (default: nogroup)")
  .option(
    '--daemon-user <user>',
    "management mode: the daemon's own user, made by the sysusers.d file init writes (default: flexscript); hook mode: OpenVPN's only",
  )
  .option('--daemon-group <group>', "management mode: the daemon's group (default: the daemon user's name); hook mode: OpenVPN's only")
  .addOption(new Option('--user <user>', 'the old name of --openvpn-user').hideHelp())
  .addOption(new Option('--group <group>', 'the old name of --openvpn-group').hideHelp())
  .option('--force', 'overwrite existing files')
  .action(
    async (o: {
      dir: string;
      mode: 'hook' | 'management';
      openvpnUser?: string;
      openvpnGroup?: string;
      daemonUser?: string;
      daemonGroup?: string;
      user?: string;
      group?: string;
      force?: boolean;
    }) => process.exit(await (await import('./init.ts')).initCommand({ ...o, force: o.force ?? false })),
  );

program
  .command('status')
  .description("live clients: through the daemon's control socket (control:, both modes), else management mode's pass-through socket")
  .addOption(configOption())
  .option('--json', 'print JSON instead of a table')
  .action(async (o: { config: string; json?: boolean }) => process.exit(await (await import('./control.ts')).statusCommand(o.config, o.json ?? false)));

program
  .command('watch')
  .description('what the daemon does, live: decisions, plugin calls, root-stage requests, reloads (through its control socket)')
  .addOption(configOption('configuration file (its control: section)'))
  .option('--json', 'print the JSON lines as they come')
  .action(async (o: { config: string; json?: boolean }) => process.exit(await (await import('./watch.ts')).watchCommand(o.config, o.json ?? false)));

program
  .command('sessions')
  .description('session history from the accounting store, newest first')
  .addOption(configOption('configuration file (its store: section)'))
  .option('-u, --user <name>', 'only this common name or username')
  .option('-i, --instance <name>', 'only this OpenVPN instance')
  .option('--since <when>', 'sessions active since: 2h, 7d or an ISO time')
  .option('--until <when>', 'sessions started before: 2h, 7d or an ISO time')
  .option('--open', 'only sessions still connected')
  .option('--limit <n>', 'at most this many (default 100)')
  .option('--json', 'print JSON instead of a table')
  .action(async (o: SessionsOptions) => process.exit(await (await import('./sessions.ts')).sessionsCommand(o)));

program
  .command('backup')
  .description('copy the SQLite store to FILE while the daemon runs (SQLite online backup; PostgreSQL: use pg_dump)')
  .addOption(configOption('configuration file (its store: section)'))
  .requiredOption('--to <file>', 'where the copy goes (a new file, mode 0640)')
  .option('--force', 'replace FILE when it exists')
  .action(async (o: { config: string; to: string; force?: boolean }) => process.exit(await (await import('./backup.ts')).backupCommand(o)));

program
  .command('prune')
  .description('remove session records that ended, and denials made, longer ago than AGE (both stores; open sessions are kept)')
  .addOption(configOption('configuration file (its store: section)'))
  .requiredOption('--older-than <age>', 'e.g. 180d (days), 26w (weeks) or 72h (hours)')
  .option('--dry-run', 'only count what would be removed')
  .action(async (o: { config: string; olderThan: string; dryRun?: boolean }) => process.exit(await (await import('./prune.ts')).pruneCommand(o)));

program
  .command('kill')
  .description('disconnect every live session with exactly this common name (spaces included)')
  .argument('<name>', 'common name')
  .addOption(configOption())
  .option('-i, --instance <name>', 'only on this OpenVPN instance')
  .action(async (name: string, o: { config: string; instance?: string }) =>
    process.exit(await (await import('./control.ts')).killCommand(o.config, name, o.instance)),
  );

program
  .command('console')
  .description("the operator console in the browser: live clients, history, denials, health, disconnect (the config's console: section)")
  .addOption(configOption())
  .option('--listen <host:port>', 'where to listen (default: console.listen, else 127.0.0.1:8080)')
  .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
  .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
  .action(async (o: { config: string; listen?: string; tlsCert?: string; tlsKey?: string }) =>
    process.exit(await (await import('./console.ts')).consoleCommand(o)),
  );

program
  .command('passwd')
  .description("set a user's password (argon2id) in a users file; reads it from the terminal without echo, or from stdin")
  .argument('<user>', 'user name')
  .requiredOption('-f, --file <file>', 'users file (created with mode 0640 if missing)')
  .option('--groups <list>', 'comma-separated groups of the user (kept when not given)')
  .option('--delete', 'remove the user instead')
  .action(async (user: string, o: { file: string; groups?: string; delete?: boolean }) =>
    process.exit(await (await import('./passwd.ts')).passwdCommand(user, o)),
  );

program
  .command('totp')
  .description('second factor (the totp plugin)')
  .command('enroll')
  .description('make a new TOTP secret for a user in a secrets file; prints the otpauth:// URI and its QR code')
  .argument('<user>', 'user name')
  .requiredOption('-f, --file <file>', 'TOTP secrets file (created with mode 0640 if missing)')
  .option('--issuer <name>', 'the name authenticator apps show', 'OpenVPN')
  .option('--force', 'replace the secret of a user already enrolled')
  .option('--no-qr', 'print the URI only')
  .action(async (user: string, o: { file: string; issuer: string; force?: boolean; qr: boolean }) =>
    process.exit(await (await import('./totp.ts')).totpEnrollCommand(user, o)),
  );

program
  .command('demo')
  .description('a throwaway OpenVPN server, clients and the daemon on this machine, showing live events (needs root and openvpn)')
  .option('--clients <n>', 'number of clients', (v) => Number.parseInt(v, 10), 5)
  .option('--duration <seconds>', 'how long the clients stay connected', (v) => Number.parseInt(v, 10), 5)
  .addOption(new Option('-m, --mode <mode>', 'how OpenVPN hands events to the daemon').choices(['hook', 'management']).default('hook'))
  .action(async (o: { clients: number; duration: number; mode: 'hook' | 'management' }) => {
    const { runDemo } = await import('./demo.ts');
    // Ctrl-C or SIGTERM: the demo stops its clients, server and daemon and removes its files first
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const code = await runDemo({ ...o, out: (line) => process.stdout.write(`${line}\n`), signal: stop.signal });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.exit(code);
  });

const positiveInteger = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number, at least 1');
  return n;
};
const share = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('a share from 0 to 1');
  return n;
};

interface BenchCliOptions {
  clients: number;
  json?: string;
  modes?: string;
  repeat?: number;
  timeout?: number;
  micro?: boolean;
  fleet?: boolean;
  instances?: number;
  sessions?: number;
  store: 'sqlite' | 'postgres';
  inFlight?: number;
  storm?: number;
  reauth?: number;
  firewall?: boolean;
  pgPool?: number;
}

/** `bench --fleet`: the daemon against simulated OpenVPN servers; exits 1 if anything was lost. */
async function runFleetCli(o: BenchCliOptions): Promise<void> {
  const { formatFleet, runFleet, stopFleet } = await import('../bench/fleet.ts');
  const stop = (code: number) => {
    stopFleet();
    process.exit(code);
  };
  process.once('SIGINT', () => stop(130));
  process.once('SIGTERM', () => stop(143));
  process.once('SIGHUP', () => stop(129));
  const result = await runFleet({
    ...(o.instances === undefined ? {} : { instances: o.instances }),
    ...(o.sessions === undefined ? {} : { sessions: o.sessions }),
    store: o.store,
    ...(o.inFlight === undefined ? {} : { inFlight: o.inFlight }),
    ...(o.storm === undefined ? {} : { storm: o.storm }),
    ...(o.reauth === undefined ? {} : { reauth: o.reauth }),
    ...(o.firewall ? { firewall: true } : {}),
    ...(o.pgPool === undefined ? {} : { pgPool: o.pgPool }),
    ...(o.json === undefined ? {} : { json: o.json }),
    ...(o.timeout === undefined ? {} : { timeoutS: o.timeout }),
    out: (line) => process.stderr.write(`${line}\n`),
  }).catch((err: unknown) => {
    process.stderr.write(`flexscript bench --fleet: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    stop(1);
    throw err;
  });
  process.stdout.write(`\n${formatFleet(result)}\n`);
  process.exit(result.errors.length > 0 ? 1 : 0);
}

program
  .command('bench')
  .description(
    `the reconnect-storm benchmark: N real clients, then a real server, once per way of running hooks (${BENCH_MODES.join(', ')}; needs root and openvpn, and slapd for ldap-totp)`,
  )
  .option('--clients <n>', 'number of clients', (v) => Number.parseInt(v, 10), 300)
  .option('--json <file>', 'also write the results as JSON (every run)')
  .option('--modes <list>', `comma-separated subset of ${BENCH_MODES.join(',')} (default ${DEFAULT_BENCH_MODES.join(',')})`)
  .option(
    '--repeat <k>',
    "K rounds, each mode right after a floor run of its own; reports each mode's median ratio to its floor, best and worst round",
    (v) => {
      const k = Number(v);
      if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError('a whole number of rounds, at least 1');
      return k;
    },
  )
  .option('--timeout <seconds>', 'give up on a run after this many seconds (counts as failed)', (v) => {
    const s = Number(v);
    if (!Number.isFinite(s) || s <= 0) throw new InvalidArgumentError('a number of seconds above 0');
    return s;
  })
  .option('--micro', 'only the in-process microbenchmark of the codec and the pipeline')
  .option('--fleet', 'the fleet benchmark: the daemon against many simulated OpenVPN servers (management protocol), ramp, reauth, reconnect storm, all leave')
  .option('--instances <n>', 'fleet: simulated OpenVPN servers (default 20)', positiveInteger)
  .option('--sessions <n>', 'fleet: live sessions to ramp to (default 10000)', positiveInteger)
  .addOption(
    new Option('--store <kind>', 'fleet: where the daemon records sessions (postgres: a throwaway server)').choices(['sqlite', 'postgres']).default('sqlite'),
  )
  .option('--in-flight <n>', 'fleet: connects waiting for their answer at once (default 256)', positiveInteger)
  .option('--storm <share>', 'fleet: share of the clients that reconnect at once (default 0.5)', share)
  .option('--reauth <share>', 'fleet: share of the clients that renegotiate (default 0.1)', share)
  .option('--firewall', 'fleet: the firewall plugin through the real root stage (sudo, nft, a network namespace)')
  .option('--pg-pool <n>', "fleet: PostgreSQL connections in the daemon's pool (default 16)", positiveInteger)
  .action(async (o: BenchCliOptions) => {
    if (o.fleet) return runFleetCli(o);
    if (o.micro) {
      const { runMicro } = await import('../bench/micro.ts');
      const m = await runMicro();
      process.stdout.write(
        `management codec: ${m.codecConnectsPerSecond} CONNECT blocks/s; pipeline (example plugins): ${m.pipelineEventsPerSecond} client-connects/s\n`,
      );
      process.exit(0);
    }
    const { formatTable, runBench, stopBench } = await import('../bench/bench.ts');
    const modes = o.modes?.split(',') as BenchMode[] | undefined;
    const unknown = modes?.filter((m) => !(BENCH_MODES as readonly string[]).includes(m));
    if (unknown?.length) {
      process.stderr.write(`flexscript bench: unknown mode(s): ${unknown.join(', ')} (modes: ${BENCH_MODES.join(', ')})\n`);
      process.exit(EXIT.usage);
    }
    // stopped by a signal or a crash: the root grant for nobody, the namespace and every process
    // go first; the labs' exit hook then removes their files
    const stop = (code: number) => {
      stopBench();
      process.exit(code);
    };
    process.once('SIGINT', () => stop(130));
    process.once('SIGTERM', () => stop(143));
    process.once('SIGHUP', () => stop(129));
    const crash = (err: unknown) => {
      process.stderr.write(`flexscript bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      stop(1);
    };
    process.once('uncaughtException', crash);
    process.once('unhandledRejection', crash);
    const result = await runBench({
      clients: o.clients,
      json: o.json,
      modes,
      repeat: o.repeat,
      timeoutS: o.timeout,
      out: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`\n${o.clients} clients; flexscript pipeline: ${result.pipeline}\n${formatTable(result)}\n`);
    process.exit(result.runs.some((r) => r.error) ? 1 : 0);
  });

await program.parseAsync(process.argv).catch((err: unknown) => {
  // a config that does not load (flexscript run): its problems, one a line, and exit 3
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
    process.exit(EXIT.config);
  }
  process.stderr.write(`flexscript: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.failure);
});

/**
 * @module root-main
 * `flexscript-root --config FILE`: the root stage, started once by the daemon through
 * `sudo -n`. bin/flexscript-root.js has already checked that no one but root can change its
 * code or config (before loading any of it); this loads the config, ensures the nft table, and
 * serves requests from stdin (one JSON line each) with answers on stdout, logging JSON lines on
 * stderr. It exits when stdin closes.
 */
import { isAbsolute } from 'node:path';
import { flushConntrack } from './conntrack.ts';
import { limitProcesses, run } from './exec.ts';
import { readLines } from './line-reader.ts';
import { NftManager } from './nft-manager.ts';
import { encodeLine, LIMITS } from './protocol.ts';
import { loadRootConfig, RootConfigError, type RootConfig } from './root-config.ts';
import { createRootLog, type RootLog } from './root-log.ts';
import { RootStage } from './root-stage.ts';
import { RouteManager } from './routes.ts';
import { ScratchDir } from './scratch-dir.ts';

/** Exit codes (sysexits.h): usage, refused to run for safety or config, internal failure. */
const EXIT = { ok: 0, failed: 1, usage: 64, config: 78 } as const;

function parseArgs(argv: readonly string[]): string | undefined {
  if (argv.length !== 2 || argv[0] !== '--config') return undefined;
  const file = argv[1];
  return file !== undefined && isAbsolute(file) ? file : undefined;
}

/**
 * Serves requests until stdin closes; resolves when every answer has been written. While the
 * daemon does not read the answers, no more requests are read either, so unread answers cannot
 * pile up in memory.
 */
function serve(stage: RootStage, log: RootLog): Promise<void> {
  return new Promise((resolveServe) => {
    const inflight = new Set<Promise<void>>();
    const write = (response: object) => {
      if (!process.stdout.write(encodeLine(response)) && !process.stdin.isPaused()) {
        process.stdin.pause();
        process.stdout.once('drain', () => process.stdin.resume());
      }
    };
    process.stdout.on('error', (err) => {
      log.warn({ reason: err.message }, 'stdout closed; exiting');
      process.exit(EXIT.ok);
    });
    readLines(process.stdin, LIMITS.line, {
      line: (text) => {
        if (text.trim() === '') return;
        const p = stage.handle(text).then(write);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      },
      tooLong: () => write(stage.tooLong()),
      end: () => {
        void Promise.allSettled([...inflight]).then(() => resolveServe());
      },
    });
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  const log = createRootLog((line) => process.stderr.write(line));
  process.on('uncaughtException', (err) => {
    log.fatal({ reason: err.message, stack: err.stack }, 'uncaught exception');
    process.exit(EXIT.failed);
  });
  const configFile = parseArgs(argv);
  if (configFile === undefined) {
    log.fatal({ argv }, 'usage: flexscript-root --config /absolute/path/root.yaml');
    return EXIT.usage;
  }
  if (process.getuid?.() !== 0) {
    log.fatal({ uid: process.getuid?.() }, 'flexscript-root must run as root (the daemon starts it through sudo)');
    return EXIT.config;
  }
  let config: RootConfig;
  try {
    config = await loadRootConfig(configFile);
  } catch (err) {
    if (!(err instanceof RootConfigError)) throw err;
    log.fatal({ code: err.code, problems: err.problems }, `invalid root config: ${err.message}`);
    return EXIT.config;
  }
  const scratch = new ScratchDir();
  process.on('exit', () => scratch.close());
  // sudo passes the daemon's SIGTERM/SIGHUP on; without handlers Node exits without 'exit'
  for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(signal, () => process.exit(EXIT.failed));
  // a bound on processes per tool, whatever mix of requests arrives (LIMITS.processes in all);
  // separate, so a flood of flushes never holds up a set change
  const nft = new NftManager({ config, log, scratch, runner: limitProcesses(run, 1) });
  const routes = new RouteManager({ config, log, runner: limitProcesses(run, 1) });
  const conntrackRunner = limitProcesses(run, LIMITS.conntrackProcesses);
  try {
    await nft.ensure();
  } catch (err) {
    log.fatal({ code: (err as { code?: string }).code, reason: (err as Error).message }, 'cannot set up the nft table');
    return EXIT.failed;
  }
  log.info(
    {
      config: configFile,
      table: config.table,
      groups: [...config.groups.keys()],
      interfaces: config.vpnInterfaces,
      networks: config.vpnNetworks.map((n) => n.text),
      scratch: scratch.path,
    },
    'ready',
  );
  await serve(new RootStage({ config, log, nft, routes, conntrack: (address, l) => flushConntrack(address, l, conntrackRunner) }), log);
  log.info({ nftRuns: nft.runs }, 'stdin closed; exiting');
  return EXIT.ok;
}

/**
 * @module driver
 * The daemon side of the real root-stage test, run as `nobody` inside the test's network
 * namespace: it drives a RootClient (real `sudo -n`, real flexscript-root) on commands read as
 * JSON lines from stdin, and writes answers and the client's log records as JSON lines on
 * stdout. `desiredState()` returns whatever the test last set with `desired`.
 *
 * Commands: start {restart, timeoutMs?}, call {method, args}, burst {method, group?, addresses, waves, progressAfter}
 * (without group, each address is the only argument),
 * desired {state}, stats, close.
 */
import { createInterface } from 'node:readline';
import { RootError, type DesiredState } from '../../src/root/protocol.ts';
import { RootClient, type RootClientLog } from '../../src/root/root-client.ts';

const config = process.argv[2];
if (!config) throw new Error('usage: driver.ts ROOT_CONFIG');

const out = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);
const log: RootClientLog = Object.fromEntries(
  (['debug', 'info', 'warn', 'error'] as const).map((level) => [level, (fields: object, msg?: string) => out({ log: { level, msg: msg ?? '', fields } })]),
) as unknown as RootClientLog;

const errorOf = (err: unknown) => (err instanceof RootError ? { code: err.code, message: err.message } : { code: 'UNEXPECTED', message: String(err) });

let desired: DesiredState = { sets: {}, routes: [] };
let client: RootClient | undefined;

type Method = 'ensure' | 'setAdd' | 'setRemove' | 'routeAdd' | 'routeRemove' | 'conntrackFlush' | 'list' | 'reconcile';
function invoke(method: Method, args: unknown[]): Promise<unknown> {
  if (!client) return Promise.reject(new Error('not started'));
  const fn = client[method] as (...a: unknown[]) => Promise<unknown>;
  return fn.apply(client, args);
}

interface Command {
  seq: number;
  op: string;
  [key: string]: unknown;
}

async function handle(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'start':
      client = new RootClient({
        config,
        log,
        restart: cmd.restart as { minMs: number; maxMs: number },
        desiredState: () => desired,
        ...(typeof cmd.timeoutMs === 'number' ? { timeoutMs: cmd.timeoutMs } : {}),
      });
      client.start();
      return client.stats;
    case 'desired':
      desired = cmd.state as DesiredState;
      return undefined;
    case 'stats':
      return client?.stats;
    case 'call':
      return invoke(cmd.method as Method, cmd.args as unknown[]);
    case 'burst': {
      // a wave's requests all at once, as a reconnect storm would; answers counted by outcome
      const started = Date.now();
      const all = cmd.addresses as string[];
      const waves = (cmd.waves as number | undefined) ?? 1;
      const size = Math.ceil(all.length / waves);
      let settled = 0;
      const outcomes: Record<string, number> = {};
      for (let w = 0; w < waves; w += 1) {
        await Promise.all(
          all.slice(w * size, (w + 1) * size).map((address) =>
            invoke(cmd.method as Method, cmd.group === undefined ? [address] : [cmd.group, address])
              .then(
                () => 'ok',
                (err: unknown) => errorOf(err).code,
              )
              .then((outcome) => {
                outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
                settled += 1;
                if (settled === cmd.progressAfter) out({ event: 'progress', seq: cmd.seq, settled });
              }),
          ),
        );
      }
      return { outcomes, ms: Date.now() - started };
    }
    case 'close':
      await client?.close();
      return client?.stats;
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as Command;
  handle(cmd).then(
    (result) => out({ seq: cmd.seq, ok: true, result }),
    (err: unknown) => out({ seq: cmd.seq, ok: false, error: errorOf(err) }),
  );
}
await client?.close();

/**
 * @module watch
 * `flexscript watch`: what the running daemon does, live, from its control socket's `watch`
 * feed: decisions, plugin calls, root-stage requests and lifecycle steps, one line each (or the
 * JSON lines with --json). Client text is shown escaped, as everywhere on the command line.
 */
import { ConfigError, errorMessage, formatProblem } from '../errors.ts';
import { loadConfig } from '../config/load-config.ts';
import type { DecisionMessage } from '../observe/channels.ts';
import { openWatch } from '../observe/watch-client.ts';
import type { WatchLine } from '../observe/watch-feed.ts';
import { quotedName, terminalJsonLine, visibleText } from './text-table.ts';
import { EXIT, WHY_UNREACHABLE } from './exit-codes.ts';

const ms = (n: number | undefined) => (n === undefined ? '' : ` ${n.toFixed(1)} ms`);

function decisionText(d: DecisionMessage): string {
  const who = [
    d.commonName === undefined ? undefined : quotedName(d.commonName),
    d.username === undefined ? undefined : `user ${quotedName(d.username)}`,
  ].filter(Boolean);
  const where = [
    d.realAddress === undefined ? undefined : `from ${visibleText(d.realAddress)}${d.realPort === undefined ? '' : `:${d.realPort}`}`,
    d.operation === undefined ? undefined : `${visibleText(d.operation)} ${visibleText(d.address ?? '')}`,
    d.vpnAddress === undefined || d.operation !== undefined
      ? undefined
      : `gets ${[d.vpnAddress, d.vpnAddress6]
          .filter(Boolean)
          .map((a) => visibleText(a!))
          .join(' ')}`,
  ].filter(Boolean);
  const why = d.verdict === 'deny' ? `: ${d.plugin === undefined ? '' : `by ${visibleText(d.plugin)}: `}${visibleText(d.reason ?? '')}` : '';
  const unhandled = d.unhandled === undefined ? [] : [`(${visibleText(d.unhandled)})`];
  return [visibleText(d.event), visibleText(d.instance), ...who, ...where, `${d.verdict ?? '?'}${why}`, ...unhandled].join(' ') + ms(d.ms);
}

/** One feed line as a line for a person. */
export function watchText(line: WatchLine): string {
  const time = visibleText(String(line.time ?? '')).slice(11, 23);
  switch (line.channel) {
    case 'decision':
      return `${time}  event   ${decisionText(line.data)}`;
    case 'plugin-call': {
      const c = line.data;
      const error = c.failure === undefined ? '' : `: ${visibleText(c.failure)}`;
      return `${time}  plugin  ${visibleText(c.plugin)} on ${visibleText(c.event)} ${visibleText(c.outcome ?? '?')}${error}${ms(c.ms)}`;
    }
    case 'root-action': {
      const r = line.data;
      return `${time}  root    ${visibleText(r.action)} ${r.code === undefined ? 'ok' : `failed ${visibleText(r.code)}`}${ms(r.ms)}`;
    }
    case 'lifecycle': {
      const { what, ...rest } = line.data;
      return `${time}  daemon  ${visibleText(what)}${Object.keys(rest).length ? ` ${terminalJsonLine(rest)}` : ''}`;
    }
    default:
      return `${time}  ${terminalJsonLine(line)}`;
  }
}

export async function watchCommand(configFile: string, json: boolean): Promise<number> {
  try {
    const { config } = await loadConfig(configFile);
    if (!config.control) throw new Error(`${configFile}: control.socket is not set; watch needs the daemon's control socket`);
    const out = (text: string) => process.stdout.write(`${text}\n`);
    const watch = await openWatch(config.control.socket, (line) => out(json ? terminalJsonLine(line) : watchText(line)));
    process.stderr.write(`watching the daemon at ${visibleText(config.control.socket)}; Ctrl-C stops\n`);
    await watch.closed;
    process.stderr.write('the daemon ended the watch\n');
    return 0;
  } catch (err) {
    const unreachable = /cannot reach the daemon/.test(errorMessage(err));
    const text = err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : `${errorMessage(err)}${unreachable ? `; ${WHY_UNREACHABLE}` : ''}`;
    process.stderr.write(`${text}\n`);
    return err instanceof ConfigError ? EXIT.config : unreachable ? EXIT.unreachable : EXIT.failure;
  }
}

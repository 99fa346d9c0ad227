/**
 * @module pass-through
 * OpenVPN accepts one management client, and the daemon is it. Other tools (status pages,
 * `flexscript status`, `flexscript kill`) use this socket instead: read-only commands pass
 * through to the named OpenVPN instance; killing clients only when the config allows it.
 *
 * Protocol: one command per line, optionally prefixed `@INSTANCE `; the answer is OpenVPN's
 * (`SUCCESS: ...`, `ERROR: ...`, or lines ending in `END`).
 */
import { errorMessage } from '../../errors.ts';
import type { EventSink } from '../../events/source.ts';
import type { ManagementConfig } from '../../config/config-schema.ts';
import type { Logger } from '../../logger.ts';
import { LineServer } from '../../util/line-server.ts';
import { simpleCommand, type EncodedCommand } from '../../openvpn-management/commands.ts';
import type { ManagementSource } from './management-source.ts';

type PassThroughConfig = NonNullable<ManagementConfig['pass-through']>;

/**
 * Read-only commands, each built by the encoder. `status` and `status 1` would begin each
 * client row with its common name, which a certificate may set to look like a notification
 * (`>CLIENT:CONNECT,...`) to whatever reads this socket: `status` is answered in version 3,
 * whose rows begin with a fixed keyword, and `status 1` is refused.
 */
const READ_ONLY: Record<string, () => EncodedCommand> = {
  status: () => simpleCommand('status 3'),
  'status 2': () => simpleCommand('status 2'),
  'status 3': () => simpleCommand('status 3'),
  version: () => simpleCommand('version'),
  'load-stats': () => simpleCommand('load-stats'),
  pid: () => simpleCommand('pid'),
};

const MAX_LINE = 512;

export class PassThroughServer {
  readonly #lines: LineServer;

  constructor(
    private readonly config: PassThroughConfig,
    private readonly sources: ReadonlyMap<string, ManagementSource>,
    private readonly live: Pick<EventSink, 'clients'>,
    private readonly log: Logger,
    /** Ends a killed client's record as killed (`false`: undoes it when OpenVPN refused the kill). */
    private readonly recordKill?: (instance: string, cid: number, killed: boolean) => Promise<void>,
  ) {
    // the line as sent, only its ending removed: `kill NAME` matches NAME exactly ("alice " is
    // not "alice"), and a line too long for any command is refused, never cut to fit one
    const answer = (line: string) =>
      line.length > MAX_LINE
        ? Promise.resolve(`ERROR: line longer than ${MAX_LINE} characters\n`)
        : this.#answer(line).catch((err: unknown) => `ERROR: ${errorMessage(err)}\n`);
    this.#lines = new LineServer('pass-through', config, answer, log);
  }

  start(): Promise<void> {
    return this.#lines.start();
  }

  close(): Promise<void> {
    return this.#lines.close();
  }

  async #answer(line: string): Promise<string> {
    let name = [...this.sources.keys()][0];
    let command = line;
    const at = /^@(\S+)\s+(.*)$/.exec(line);
    if (at) [, name, command] = at as unknown as [string, string, string];
    const source = name === undefined ? undefined : this.sources.get(name);
    if (!source) return `ERROR: no OpenVPN instance named ${JSON.stringify(name ?? '')}\n`;
    const build = Object.hasOwn(READ_ONLY, command) ? READ_ONLY[command] : undefined;
    if (build) {
      const reply = await source.client.command(build());
      return reply.type === 'multiline' ? `${[...reply.lines, 'END'].join('\n')}\n` : `SUCCESS: ${reply.text}\n`;
    }
    const kill = /^(client-kill (\d+)|kill (.+))$/.exec(command);
    if (kill) {
      if (!this.config['allow-kill']) return 'ERROR: killing clients is not allowed here (management.pass-through.allow-kill)\n';
      const cids = kill[2] !== undefined ? [Number(kill[2])] : this.#cidsOf(source.instance, kill[3]!);
      if (cids.length === 0) return `ERROR: no live client named ${JSON.stringify(kill[3])} on ${source.instance}\n`;
      for (const cid of cids) {
        await this.#noteKill(source.instance, cid, true);
        await source.client.clientKill(cid).catch(async (err: unknown) => {
          await this.#noteKill(source.instance, cid, false);
          throw err;
        });
      }
      this.log.info({ instance: source.instance, cids, by: 'pass-through' }, 'clients killed');
      return `SUCCESS: killed ${cids.length} client(s)\n`;
    }
    if (command === 'status 1') return 'ERROR: status 1 is not served here (its rows begin with client-chosen names); use status 3\n';
    return `ERROR: command not allowed here: ${JSON.stringify(command.slice(0, 64))}\n`;
  }

  /** The history says who ended a session; a store that cannot say so does not stop the kill. */
  async #noteKill(instance: string, cid: number, killed: boolean): Promise<void> {
    try {
      await this.recordKill?.(instance, cid, killed);
    } catch (err) {
      this.log.warn({ instance, cid, err: errorMessage(err) }, 'could not record the kill in the session record');
    }
  }

  /** Client ids of the live sessions with this common name. */
  #cidsOf(instance: string, commonName: string): number[] {
    const cids: number[] = [];
    for (const { key, commonName: name } of this.live.clients()) {
      if (key.via === 'management' && key.instance === instance && name === commonName) cids.push(key.cid);
    }
    return cids;
  }
}

/**
 * @module status-file
 * Hook mode has no `status` command: after a daemon restart, the live clients are read from
 * OpenVPN's status file (`status FILE N` with `status-version 3`, the same table management's
 * `status 3` prints). Events spooled while the daemon was down are processed after this, so a
 * client that left meanwhile is closed again by its own disconnect.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../../errors.ts';
import type { ListedClient } from '../../core/client.ts';
import { listedClient } from '../../core/listed-client.ts';
import type { EventSink } from '../../events/source.ts';
import type { Logger } from '../../logger.ts';
import { publishLifecycle } from '../../observe/channels.ts';
import { parseStatus3 } from '../../openvpn-management/commands.ts';

/** How often, and how long apart, the status file is read again while it is incomplete or old. */
const READ_TRIES = 100;
const READ_PAUSE_MS = 50;
/** An empty file is OpenVPN between its truncate and its write, or a file it never wrote (not running): read again this often. */
const EMPTY_TRIES = 10;

/** The `TIME` line's unix seconds, if any. */
const fileTime = (text: string) => Number(/^TIME\t[^\t]*\t(\d+)\r?$/m.exec(text)?.[1] ?? 0);

/**
 * OpenVPN rewrites the status file in place every few seconds (truncate, then write), so a read
 * can catch it half written; and a snapshot taken just before a restart may list a client that
 * had just connected without her address yet. Either would take live clients' access away, so
 * the file is read again until it is whole (its `END` line) and, when `writtenAfterMs` is given,
 * written after that moment; after about 5 s it is taken as it is (OpenVPN may not be running).
 * An empty read is the moment between OpenVPN's truncate and its write as often as a file it
 * never wrote: it counts as no clients only after half a second of empty reads.
 */
async function readWhole(file: string, log: Logger, writtenAfterMs?: number): Promise<string> {
  let text = '';
  let empty = 0;
  for (let i = 0; i < READ_TRIES; i++) {
    text = await readFile(file, 'utf8');
    if (text === '' && ++empty >= EMPTY_TRIES) return text;
    if (text !== '') empty = 0;
    const whole = /(^|\n)END\r?\n?$/.test(text);
    const fresh = writtenAfterMs === undefined || fileTime(text) > Math.floor(writtenAfterMs / 1000);
    if (whole && fresh) return text;
    await new Promise((resolve) => setTimeout(resolve, READ_PAUSE_MS));
  }
  log.warn({ file }, 'OpenVPN status file is incomplete or was not rewritten since the daemon started; using it as it is');
  return text;
}

/** The clients a status file lists, and when the list was taken (ms; 0 when unknown). */
export interface StatusFileList {
  readonly clients: readonly ListedClient[];
  readonly asOf: number;
}

/** Parses a status file's text (status-version 3) into the clients of `instance`. */
export function statusFileList(text: string, instance: string): StatusFileList {
  const status = parseStatus3(text.split('\n'));
  return { clients: status.clients.map((c) => listedClient(instance, c, 'hook')), asOf: status.time ? status.time * 1000 : 0 };
}

/**
 * Reads the clients listed in the status file (see readWhole for `writtenAfterMs`); undefined
 * when the file cannot be read or is not status-version 3, which is logged.
 */
async function readStatusFile(file: string, instance: string, log: Logger, writtenAfterMs?: number): Promise<StatusFileList | undefined> {
  let text: string;
  try {
    text = await readWhole(file, log, writtenAfterMs);
  } catch (err) {
    // missing: OpenVPN has not run yet, so nobody is connected; anything else loses live clients
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    const fix = missing
      ? undefined
      : `make ${file} readable by the daemon's user or group (flexscript init's tmpfiles.d drop-in: root's, mode 0640, OpenVPN's group)`;
    log[missing ? 'warn' : 'error']({ file, err: errorMessage(err), fix }, 'cannot read OpenVPN status file; live sessions start empty');
    return undefined;
  }
  if (text.trim() !== '' && !/^HEADER\tCLIENT_LIST\t/m.test(text)) {
    log.error(
      { file, fix: "status-version 3 in OpenVPN's config, after any --status-version on its command line" },
      'OpenVPN status file is not status-version 3; live sessions start empty',
    );
  }
  return statusFileList(text, instance);
}

/**
 * Hands the clients listed in the status file to the sink as the instance's live clients;
 * returns when the list was taken (ms): clients that connected after that are not in it.
 */
export async function rebuildFromStatusFile(
  file: string,
  instance: string,
  sink: Pick<EventSink, 'rebuild'>,
  log: Logger,
  writtenAfterMs?: number,
): Promise<number> {
  const list = await readStatusFile(file, instance, log, writtenAfterMs);
  if (!list) return 0;
  // hook mode's file is rewritten only every few seconds: a client missing from it may just have
  // connected, so nobody is closed as missed here (spooled disconnects say who left)
  const { rebuilt } = await sink.rebuild(instance, list.clients);
  log.info({ file, rebuilt }, 'sessions rebuilt from the status file');
  publishLifecycle(() => ({ what: 'sessions-rebuilt', source: 'hook', instance, rebuilt }));
  return list.asOf;
}

/**
 * @module status-file
 * Hook mode has no `status` command: after a daemon restart, the live clients are read from
 * OpenVPN's status file (`status FILE N` with `status-version 3`, the same table management's
 * `status 3` prints). Events spooled while the daemon was down are processed after this, so a
 * client that left meanwhile is closed again by its own disconnect.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../../errors.ts';
import type { Dispatcher } from '../../daemon/dispatcher.ts';
import type { Logger } from '../../logger.ts';
import { parseStatus3 } from '../../openvpn-management/commands.ts';
import { splitAddress } from '../management/management-source.ts';
import { hookSessionKey } from './hook-server.ts';

/**
 * Adds the clients listed in the status file as live sessions; returns when the list was
 * taken (ms): clients that connected after that are not in it.
 */
export async function rebuildFromStatusFile(file: string, instance: string, dispatcher: Dispatcher, log: Logger): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    log.warn({ file, err: errorMessage(err) }, 'cannot read OpenVPN status file; live sessions start empty');
    return 0;
  }
  const status = parseStatus3(text.split('\n'));
  let added = 0;
  for (const c of status.clients) {
    // a client still waiting for its answer has no address yet and is no session
    if (!c.virtualAddress && !c.virtualIPv6Address) continue;
    const [realAddress, realPort] = splitAddress(c.realAddress);
    const info = { instance, commonName: c.commonName, username: c.username, realAddress, realPort, vpnAddress: c.virtualAddress || undefined, vpnAddress6: c.virtualIPv6Address || undefined };
    const key = hookSessionKey({ name: 'client-connect', ...info } as never);
    if (dispatcher.sessions.get(key)) continue;
    dispatcher.sessions.add(dispatcher.sessions.create(key, info, c.connectedSince * 1000));
    added++;
  }
  log.info({ file, rebuilt: added }, 'sessions rebuilt from the status file');
  return status.time ? status.time * 1000 : 0;
}

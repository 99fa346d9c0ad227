/**
 * @module conntrack
 * Deletes the connection-tracking entries of one address (as source, then as destination), so
 * a client whose access was withdrawn cannot keep using connections that were already
 * established. Uses the `conntrack` tool with an argv list.
 */
import { findTool, firstLines, run as realRun, type Runner } from './exec.ts';
import type { HostAddress } from './ip-address.ts';
import { RootError, RootErrorCode } from './protocol.ts';
import type { RootLog } from './root-log.ts';

/** conntrack exits 1 when nothing matched; the count on stderr tells success apart. */
const DELETED = /(\d+) flow entries have been deleted/;

export async function flushConntrack(address: HostAddress, log: RootLog, runner: Runner = realRun): Promise<{ deleted: number }> {
  const tool = findTool('conntrack');
  const family = address.family === 4 ? 'ipv4' : 'ipv6';
  let deleted = 0;
  for (const flag of ['-s', '-d']) {
    const result = await runner(tool, ['-D', '-f', family, flag, address.text], { timeoutMs: 30_000 });
    const count = DELETED.exec(result.stderr);
    if (!count || (result.code !== 0 && result.code !== 1)) {
      throw new RootError(
        RootErrorCode.CONNTRACK_FAILED,
        `conntrack -D ${flag} ${address.text} failed: ${firstLines(result.stderr) || `exit ${result.code ?? result.signal}`}`,
      );
    }
    deleted += Number(count[1]);
  }
  log.info({ address: address.text, deleted }, 'conntrack flush');
  return { deleted };
}

/**
 * @module group-id
 * A group's number, from its name or number, for the sockets and folders the daemon shares
 * with a group.
 */
import { readFileSync } from 'node:fs';
import { ErrorCode, FlexscriptError } from '../errors.ts';

/** Looks a group up in /etc/group (Node has no getgrnam). */
export function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid) return Number(gid);
  }
  throw new FlexscriptError(ErrorCode.STATE, `group ${name} does not exist`);
}

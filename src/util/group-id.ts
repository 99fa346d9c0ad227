/**
 * @module group-id
 * A group's number, from its name or number, for the sockets and folders the daemon shares
 * with a group.
 */
import { ErrorCode, FlexscriptError } from '../errors.ts';
import { groupIdOf } from './system-accounts.ts';

/** Looks a group up in /etc/group (Node has no getgrnam); a number names itself. */
export function groupId(name: string): number {
  const gid = groupIdOf(name);
  if (gid === undefined) throw new FlexscriptError(ErrorCode.STATE, `group ${name} does not exist`);
  return gid;
}

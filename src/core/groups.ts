/**
 * @module groups
 * The groups a client is in are data from wherever it was authenticated (a directory, a users
 * file, a provider's claims): kept as given, but bounded, since a hostile directory entry or
 * claim must not grow a session without limit or put control characters into logs and tables.
 */

/** A group name's longest length in characters (Active Directory's common names are at most 64; DNs longer). */
const MAX_GROUP_NAME = 256;
/** The most groups one client may be in. */
const MAX_GROUPS = 256;

/** Checks names given to `addGroups`: strings of 1 to MAX_GROUP_NAME characters without control characters. */
export function checkGroupNames(names: readonly unknown[]): string[] {
  if (names.length > MAX_GROUPS) throw new Error(`addGroups(): at most ${MAX_GROUPS} groups`);
  return names.map((name) => {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_GROUP_NAME)
      throw new Error(`addGroups(): a group name is a string of 1 to ${MAX_GROUP_NAME} characters`);
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new Error('addGroups(): a group name has no control characters');
    return name;
  });
}

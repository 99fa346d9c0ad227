/**
 * @module group-rules
 * The operator's static group rules (the config's top-level `groups:`): a client is in a group
 * when the group names its common name, its verified username, or a pattern matching either.
 * These groups join those from whoever authenticated the client. The names matched are
 * client-controlled data: compared exactly, and patterns never backtrack (util/glob.ts).
 */
import { compileGlob } from '../util/glob.ts';

/** One group's members, as the firewall and client-config plugins list them. */
interface GroupMembers {
  /** Exact certificate common names. */
  readonly 'common-names': readonly string[];
  /** Exact usernames, verified ones only. */
  readonly usernames: readonly string[];
  /** Globs (`*`, `?`) matched against the whole common name and the whole (verified) username. */
  readonly patterns: readonly string[];
}

/** Group name → its members. */
export type GroupRules = Readonly<Record<string, GroupMembers>>;

/** Who a client is, for the rules: the certificate's name and a verified username, if any. */
export interface RuleSubject {
  readonly commonName: string;
  readonly username?: string;
}

/** Compiles the rules once; the result gives the groups a client is in, in the rules' order. */
export function groupRules(rules: GroupRules = {}): (who: RuleSubject) => string[] {
  const compiled = Object.entries(rules).map(([name, m]) => ({
    name,
    names: new Set(m['common-names']),
    users: new Set(m.usernames),
    patterns: m.patterns.map((p) => compileGlob(p)),
  }));
  if (compiled.length === 0) return () => [];
  return ({ commonName, username }) =>
    compiled
      .filter(
        (g) =>
          g.names.has(commonName) ||
          (username !== undefined && g.users.has(username)) ||
          g.patterns.some((p) => p(commonName) || (username !== undefined && p(username))),
      )
      .map((g) => g.name);
}

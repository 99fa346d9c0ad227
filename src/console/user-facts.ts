/**
 * @module user-facts
 * What the config says about one user, for the console's user page: the session limit that
 * applies (the session-limit plugin's `max`, or its largest group limit) and the firewall sets
 * the firewall plugin would put the user's addresses in. Read from the plugins' options as the
 * config holds them; the plugins themselves validated those options when the daemon loaded them.
 */
import { compileGlob } from '../util/glob.ts';

interface PluginEntry {
  readonly use?: string;
  readonly options?: unknown;
}

interface Who {
  readonly name: string;
  readonly groups: readonly string[];
}

const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** The session limit that applies to `who`, as text, or undefined when no session-limit plugin is configured. */
export function sessionLimitOf(plugins: readonly PluginEntry[], who: Who): string | undefined {
  const entry = plugins.find((p) => p.use === 'session-limit');
  if (!entry) return undefined;
  const o = record(entry.options);
  const groups = record(o.groups);
  const own = who.groups.filter((g) => typeof groups[g] === 'number').map((g) => ({ g, n: groups[g] as number }));
  const onExceed = typeof o['on-exceed'] === 'string' ? o['on-exceed'] : 'deny-new';
  if (own.length > 0) {
    const best = own.reduce((a, b) => (b.n > a.n ? b : a));
    return `${best.n} at once (group ${best.g}; over it: ${onExceed})`;
  }
  return typeof o.max === 'number' ? `${o.max} at once (over it: ${onExceed})` : undefined;
}

/**
 * The firewall plugin's groups (nft sets) naming `who`: by common name or username, a pattern,
 * or one of the user's groups; the default group when none does.
 */
export function firewallSetsOf(plugins: readonly PluginEntry[], who: Who): string[] {
  const entry = plugins.find((p) => p.use === 'firewall');
  if (!entry) return [];
  const o = record(entry.options);
  const sets = Object.entries(record(o.groups))
    .filter(([, m]) => {
      const member = record(m);
      if (strings(member['common-names']).includes(who.name) || strings(member.usernames).includes(who.name)) return true;
      if (strings(member.groups).some((g) => who.groups.includes(g))) return true;
      return strings(member.patterns).some((p) => {
        try {
          return compileGlob(p)(who.name);
        } catch {
          return false;
        }
      });
    })
    .map(([name]) => name);
  const fallback = o['default-group'];
  return sets.length > 0 ? sets : typeof fallback === 'string' ? [`${fallback} (default)`] : [];
}

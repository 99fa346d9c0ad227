/**
 * @module claims
 * From an ID token's claims to who the client is: the username from the configured claim, the
 * groups from the groups claim, then the required groups and claims. Claims are the provider's
 * statements, but still data: names are kept as given, bounded, without control characters.
 */

export interface ClaimRules {
  readonly usernameClaim: string;
  readonly groupsClaim?: string;
  readonly requiredGroups?: readonly string[];
  readonly requiredClaims?: Readonly<Record<string, string | number | boolean>>;
}

export type ClaimOutcome =
  | { readonly ok: true; readonly username: string; readonly groups: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const MAX_NAME = 256;
const MAX_GROUPS = 256;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const usable = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME && !CONTROL.test(v);

/** The groups a claim lists: an array of names, or one name; anything else is no group. */
export function groupsOf(value: unknown): string[] {
  const names = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return [...new Set(names.filter(usable))].slice(0, MAX_GROUPS);
}

function matches(value: unknown, wanted: string | number | boolean): boolean {
  if (Array.isArray(value)) return value.some((v) => v === wanted);
  return value === wanted;
}

export function mapClaims(claims: Readonly<Record<string, unknown>>, rules: ClaimRules): ClaimOutcome {
  const username = claims[rules.usernameClaim];
  if (!usable(username)) return { ok: false, reason: `the ID token has no usable ${rules.usernameClaim} claim for the username` };
  for (const [name, wanted] of Object.entries(rules.requiredClaims ?? {})) {
    if (!matches(claims[name], wanted)) return { ok: false, reason: `the ID token's ${name} claim is not ${JSON.stringify(wanted)}` };
  }
  const groups = rules.groupsClaim === undefined ? [] : groupsOf(claims[rules.groupsClaim]);
  if (rules.requiredGroups && !groups.some((g) => rules.requiredGroups!.includes(g)))
    return { ok: false, reason: `the user is in none of the required groups (${rules.requiredGroups.join(', ')})` };
  return { ok: true, username, groups };
}

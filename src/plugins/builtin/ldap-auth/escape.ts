/**
 * @module escape
 * A username is hostile text: before it goes into an LDAP filter it is escaped as RFC 4515 says,
 * before it goes into a DN as RFC 4514 says, so `*`, `)(uid=*`, a backslash or a NUL stay one
 * literal value and never widen a search or name another entry. Templates name the place of the
 * value with `{user}` (or `{dn}`, a DN found in the directory, which is escaped the same way).
 */

/** RFC 4515 assertion value: `*`, `(`, `)`, `\` and NUL as `\XX`; everything else (UTF-8 too) is literal. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (ch) => `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * RFC 4514 attribute value in a DN: `"`, `+`, `,`, `;`, `<`, `>`, `\` (and `=`, which some
 * servers misread) after a backslash; NUL as `\00`; a leading space or `#` and a trailing space
 * escaped.
 */
export function escapeDnValue(value: string): string {
  const last = value.length - 1;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\0') out += '\\00';
    else if ('\\"+,;<>='.includes(ch) || (i === 0 && (ch === ' ' || ch === '#')) || (i === last && ch === ' ')) out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

/** Puts `values` (already escaped for their place) into `template` where `{name}` stands; one pass, so a value is never read as a placeholder. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{([a-z]+)\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? values[name]! : whole));
}

/** Whether a `user-dn` template is a DN; otherwise it is a name Active Directory binds with (`{user}@corp.example.com`, `CORP\\{user}`). */
export function isDnTemplate(template: string): boolean {
  return template.includes('=');
}

/**
 * @module options
 * The options of `ldap-auth`: the server and its TLS, how a user is found and checked (bind as
 * the user through a DN template, or search with a service account, then bind), how groups are
 * found, required groups and mappings, time limits, pool, cache and the login rate limits.
 */
import type { z as Zod } from 'zod';
import { duration } from '../../../util/duration.ts';
import { type LimitOptions, clientReasonSchema, loginLimitsSchema } from '../../../util/login-limits.ts';
import { isDnTemplate } from './escape.ts';

type NestedLookup = 'ad-in-chain' | 'member-of' | 'search' | 'none';

export interface LdapAuthOptions {
  readonly url: string;
  readonly 'start-tls': boolean;
  readonly ca?: string;
  readonly 'verify-name': boolean;
  readonly 'user-dn'?: string;
  readonly service?: { readonly dn: string; readonly 'password-file': string };
  readonly users?: { readonly base: string; readonly filter: string; readonly 'disabled-filter'?: string };
  readonly groups: {
    readonly nested: NestedLookup;
    readonly base?: string;
    readonly 'name-attribute': string;
    readonly 'max-depth': number;
    readonly map: Readonly<Record<string, string>>;
  };
  readonly 'required-groups'?: readonly string[];
  readonly 'attribute-groups': readonly { readonly attribute: string; readonly value: string; readonly group: string }[];
  readonly 'active-directory': boolean;
  readonly timeouts: { readonly connect: number; readonly operation: number };
  readonly pool: { readonly size: number };
  readonly cache: { readonly ttl: number; readonly 'max-entries': number };
  readonly 'max-username': number;
  readonly 'client-reason': string;
  readonly limits: { readonly user: LimitOptions; readonly address: LimitOptions };
}

const ATTRIBUTE = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
const GROUP = /^[^\u0000-\u001f\u007f]{1,256}$/;

export function ldapAuthSchema(z: typeof Zod) {
  const attribute = z.string().regex(ATTRIBUTE, 'an attribute name (letters, digits, -)');
  const group = z.string().regex(GROUP, '1 to 256 characters, no control characters');
  return z
    .object({
      /** `ldaps://dc1.example.com` or `ldap://…` (with start-tls). */
      url: z.string().regex(/^ldaps?:\/\/[^/\s?#]+\/?$/, 'ldap://HOST[:PORT] or ldaps://HOST[:PORT]'),
      /** Upgrade an ldap:// connection with StartTLS before any bind. */
      'start-tls': z.boolean().default(false),
      /** The CA certificate(s) the server's certificate must chain to (PEM file); the system's CAs otherwise. */
      ca: z.string().min(1).optional(),
      /** Check that the certificate names the host in `url` (turn off only for a pinned CA on an address it does not name). */
      'verify-name': z.boolean().default(true),
      /** Bind as the user: the DN with `{user}` where the (escaped) username goes, or an Active Directory bind name (`{user}@corp.example.com`). */
      'user-dn': z.string().includes('{user}', { message: 'must contain {user}' }).optional(),
      /** Search with a service account, then bind as the entry found. */
      service: z
        .object({ dn: z.string().min(1), 'password-file': z.string().min(1) })
        .strict()
        .optional(),
      /** Where users are and which entries may log in; `{user}` is the (escaped) username. */
      users: z
        .object({
          base: z.string().min(1),
          filter: z
            .string()
            .includes('{user}', { message: 'must contain {user}' })
            .regex(/^\(.*\)$/, 'a filter in parentheses'),
          /** An entry matching this filter is a disabled account: refused (e.g. `(employeeType=disabled)`). */
          'disabled-filter': z
            .string()
            .regex(/^\(.*\)$/, 'a filter in parentheses')
            .optional(),
        })
        .strict()
        .optional(),
      groups: z
        .object({
          /** How membership (nested groups included) is found. */
          nested: z.enum(['ad-in-chain', 'member-of', 'search', 'none']).default('member-of'),
          /** Where groups are (ad-in-chain and search). */
          base: z.string().min(1).optional(),
          /** The attribute that names a group. */
          'name-attribute': attribute.default('cn'),
          /** How deep nested groups are followed (member-of, search). */
          'max-depth': z.number().int().min(0).max(20).default(5),
          /** Directory group name → the group name the client gets. */
          map: z.record(z.string().min(1).max(256), group).default({}),
        })
        .strict()
        .default({ nested: 'member-of', 'name-attribute': 'cn', 'max-depth': 5, map: {} }),
      /** The client must be in at least one of these groups (names after `map`). */
      'required-groups': z.array(group).min(1).optional(),
      /** An attribute value of the user's entry puts the client in a group: `{ attribute: department, value: Ops, group: ops }`. */
      'attribute-groups': z.array(z.object({ attribute, value: z.string().min(1), group }).strict()).default([]),
      /** Active Directory: a disabled account (userAccountControl bit 2) is refused. */
      'active-directory': z.boolean().default(false),
      timeouts: z
        .object({ connect: duration.default(3000), operation: duration.default(3000) })
        .strict()
        .default({ connect: 3000, operation: 3000 }),
      /** Directory connections at once (service-account searches and user binds each). */
      pool: z
        .object({ size: z.number().int().min(1).max(64).default(4) })
        .strict()
        .default({ size: 4 }),
      /** Successful logins remembered for `ttl` (0: none); failures never. */
      cache: z
        .object({
          ttl: z.union([z.literal(0), duration]).default(60_000),
          'max-entries': z.number().int().min(1).max(1_000_000).default(10_000),
        })
        .strict()
        .default({ ttl: 60_000, 'max-entries': 10_000 }),
      /** Longer usernames are refused without asking the directory. */
      'max-username': z.number().int().min(1).max(1024).default(256),
      /** What a refused client is told, whatever the reason. */
      'client-reason': clientReasonSchema(z),
      limits: loginLimitsSchema(z),
    })
    .strict()
    .superRefine((o, ctx) => {
      if ((o['user-dn'] === undefined) === (o.service === undefined))
        ctx.addIssue({ code: 'custom', path: ['user-dn'], message: 'give either user-dn (bind as the user) or service (search, then bind)' });
      if (o['user-dn'] !== undefined && !isDnTemplate(o['user-dn']) && !o.users)
        ctx.addIssue({
          code: 'custom',
          path: ['users'],
          message: 'a user-dn that is no DN ({user}@REALM, DOMAIN\\{user}) names no entry to read: give users.base and users.filter to find it',
        });
      if (o.service && !o.users)
        ctx.addIssue({ code: 'custom', path: ['users'], message: 'a service account searches users: give users.base and users.filter' });
      if (o['start-tls'] && o.url.startsWith('ldaps:'))
        ctx.addIssue({ code: 'custom', path: ['start-tls'], message: 'ldaps:// is TLS already; start-tls is for ldap://' });
      if ((o.groups.nested === 'ad-in-chain' || o.groups.nested === 'search') && !o.groups.base)
        ctx.addIssue({ code: 'custom', path: ['groups', 'base'], message: `nested: ${o.groups.nested} searches groups: give groups.base` });
    });
}

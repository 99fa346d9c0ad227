/**
 * @module directory
 * The conversation with the directory: connections (LDAPS, or StartTLS before anything else,
 * with the configured CA and the host name checked), finding the user (a DN template or an
 * Active Directory bind name, or a search with the service account from a bounded pool), the
 * bind that checks the password (AD's sub-code saying why it refused one), and the user's
 * groups (Active Directory's in-chain rule, `memberOf` followed upwards, or a search for
 * `member`/`uniqueMember` repeated level by level), each bounded in depth and safe against
 * cycles. Every username reaches a filter or a DN only escaped (escape.ts).
 *
 * Any error that is not an LDAP result (refused, timed out, TLS failure, connection lost) is a
 * `DirectoryUnreachable`: the caller denies the client with that reason (fails closed).
 */
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { Client, ConfidentialityRequiredError, type Entry, InvalidCredentialsError, ResultCodeError, StrongAuthRequiredError } from 'ldapts';
import { Semaphore } from '../../../util/semaphore.ts';
import { adBindRefusal, type BindRefusal } from './ad-bind-error.ts';
import { ConnectionPool } from './connection-pool.ts';
import { allValues, values } from './entry-values.ts';
import { escapeDnValue, escapeFilterValue, fillTemplate, isDnTemplate } from './escape.ts';
import type { LdapAuthOptions } from './options.ts';

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nesting. */
const AD_IN_CHAIN = '1.2.840.113556.1.4.1941';
/** userAccountControl's ACCOUNTDISABLE bit. */
const AD_ACCOUNT_DISABLED = 0x2;
/** Characters Active Directory forbids in sAMAccountName (and `@`, which would make another userPrincipalName). */
const AD_NAME_FORBIDDEN = /["/\\[\]:;|=,+*?<>@\u0000-\u001f]/;
/** More groups than a client may have (the pipeline's bound): the lookup stops there. */
const MAX_GROUPS = 256;

export class DirectoryUnreachable extends Error {
  override readonly name = 'DirectoryUnreachable';
}

export type Login =
  | { readonly ok: true; readonly dn: string; readonly groups: readonly string[] }
  | { readonly ok: false; readonly why: BindRefusal['why'] | 'wrong-password' | 'ambiguous'; readonly reason: string };

/** What `flexscript check` reports. */
export interface Probe {
  readonly server: string;
  readonly tls: string;
  readonly bind: string;
  readonly users?: number;
  readonly groups?: number;
}

/** An error from the network or TLS (not an LDAP result) means the directory could not be asked. */
function unreachable(err: unknown): DirectoryUnreachable | undefined {
  if (err instanceof ResultCodeError) return undefined;
  return new DirectoryUnreachable((err as Error)?.message || String(err), { cause: err });
}

/**
 * A directory that takes no simple bind without TLS (Active Directory's default, Samba's
 * `ldap server require strong auth`) refuses every login the same way: a setup fault, not the user's.
 */
function tlsRequired(err: unknown): DirectoryUnreachable | undefined {
  if (!(err instanceof StrongAuthRequiredError || err instanceof ConfidentialityRequiredError)) return undefined;
  return new DirectoryUnreachable(`the directory takes no simple bind without TLS (${err.message.trim()}): use ldaps:// or start-tls: true`, { cause: err });
}

/** A bind refused for the user's password or account (undefined: any other error). */
function bindRefusal(err: unknown, plain: string): BindRefusal | { readonly why: 'wrong-password'; readonly reason: string } | undefined {
  if (!(err instanceof InvalidCredentialsError)) return undefined;
  return adBindRefusal(err.message) ?? { why: 'wrong-password', reason: plain };
}

export class Directory {
  readonly #o: LdapAuthOptions;
  readonly #tls: ConnectionOptions;
  readonly #host: string;
  readonly #servicePassword: string | undefined;
  readonly #pool: ConnectionPool<Client> | undefined;
  /** User binds at once: each is its own connection. */
  readonly #binds: Semaphore;

  constructor(options: LdapAuthOptions, secrets: { readonly ca?: string; readonly servicePassword?: string }) {
    this.#o = options;
    this.#host = new URL(options.url).hostname.replace(/^\[|\]$/g, '');
    const verifyName = options['verify-name'];
    const host = this.#host;
    this.#tls = {
      rejectUnauthorized: true,
      ...(secrets.ca === undefined ? {} : { ca: secrets.ca }),
      ...(isIP(host) ? {} : { servername: host }),
      // StartTLS upgrades a socket without a host name: the name is checked against the url's host here
      checkServerIdentity: verifyName ? (_name, cert) => checkServerIdentity(host, cert) : () => undefined,
    };
    this.#servicePassword = secrets.servicePassword;
    this.#binds = new Semaphore(options.pool.size);
    const service = options.service;
    if (service)
      this.#pool = new ConnectionPool({
        size: options.pool.size,
        idleMs: 60_000,
        create: async () => {
          const c = await this.connect();
          try {
            await c.bind(service.dn, this.#servicePassword!);
          } catch (err) {
            await c.unbind().catch(() => undefined);
            if (err instanceof InvalidCredentialsError) throw new DirectoryUnreachable(`the service account ${service.dn} cannot bind: invalid credentials`);
            throw unreachable(err) ?? tlsRequired(err) ?? err;
          }
          return c;
        },
        destroy: (c) => c.unbind().catch(() => undefined),
      });
  }

  /** A connection, over TLS where configured (StartTLS done before it is handed out). */
  async connect(): Promise<Client> {
    const { url, timeouts } = this.#o;
    // ldapts speaks TLS from the first byte whenever it has tlsOptions: only for ldaps://
    const tlsOptions = url.startsWith('ldaps:') ? { tlsOptions: { ...this.#tls } } : {};
    const c = new Client({ url, timeout: timeouts.operation, connectTimeout: timeouts.connect, ...tlsOptions, strictDN: false });
    if (this.#o['start-tls']) {
      try {
        // a copy: ldapts puts the socket into the options it is given
        await c.startTLS({ ...this.#tls });
      } catch (err) {
        await c.unbind().catch(() => undefined);
        throw unreachable(err) ?? new DirectoryUnreachable(`StartTLS refused: ${(err as Error).message}`);
      }
    }
    return c;
  }

  /** Checks a username and password; resolves with the user's groups (names as found, before mapping). */
  async login(username: string, password: string, signal?: AbortSignal): Promise<Login> {
    try {
      return this.#o.service ? await this.#searchThenBind(username, password, signal) : await this.#bindAsUser(username, password, signal);
    } catch (err) {
      throw unreachable(err) ?? err;
    }
  }

  async #searchThenBind(username: string, password: string, signal?: AbortSignal): Promise<Login> {
    const users = this.#o.users!;
    const lease = await this.#pool!.acquire(signal);
    let broken = false;
    try {
      const filter = fillTemplate(users.filter, { user: escapeFilterValue(username) });
      const found = await lease.resource.search(users.base, { scope: 'sub', filter, sizeLimit: 2, attributes: this.#userAttributes() });
      const entries = found.searchEntries;
      if (entries.length === 0) return { ok: false, why: 'unknown-user', reason: `unknown user (no entry under ${users.base} matches the users filter)` };
      if (entries.length > 1) return { ok: false, why: 'ambiguous', reason: `the users filter matches more than one entry under ${users.base}` };
      const entry = entries[0]!;
      const disabled = await this.#disabled(lease.resource, entry);
      if (disabled) return { ok: false, why: 'disabled', reason: disabled };
      const refused = await this.#bind(entry.dn, password, signal);
      if (refused) return { ok: false, ...refused };
      return { ok: true, dn: entry.dn, groups: await this.#groups(lease.resource, entry) };
    } catch (err) {
      broken = unreachable(err) !== undefined;
      throw err;
    } finally {
      lease.release(broken);
    }
  }

  /** Binds `dn` with `password` on a connection of its own (a bind changes who the connection is); resolves with why it was refused, if it was. */
  async #bind(dn: string, password: string, signal?: AbortSignal): Promise<ReturnType<typeof bindRefusal>> {
    const free = await this.#binds.acquire(signal);
    const c = await this.connect().catch((err) => {
      free();
      throw err;
    });
    try {
      await c.bind(dn, password);
      return undefined;
    } catch (err) {
      const refused = bindRefusal(err, 'wrong password');
      if (refused) return refused;
      throw tlsRequired(err) ?? err;
    } finally {
      await c.unbind().catch(() => undefined);
      free();
    }
  }

  async #bindAsUser(username: string, password: string, signal?: AbortSignal): Promise<Login> {
    const template = this.#o['user-dn']!;
    const byDn = isDnTemplate(template);
    // a userPrincipalName or DOMAIN\user is no DN: a username with a character AD's account names cannot hold names no one
    if (!byDn && AD_NAME_FORBIDDEN.test(username))
      return { ok: false, why: 'unknown-user', reason: 'unknown user (a character no Active Directory account name holds)' };
    const name = fillTemplate(template, { user: byDn ? escapeDnValue(username) : username });
    const free = await this.#binds.acquire(signal);
    let c: Client | undefined;
    try {
      c = await this.connect();
      try {
        await c.bind(name, password);
      } catch (err) {
        // a bind as a name that does not exist is refused the same way: the directory cannot tell them apart
        const refused = bindRefusal(err, 'wrong password or unknown user (bind refused)');
        if (refused) return { ok: false, ...refused };
        throw tlsRequired(err) ?? err;
      }
      const users = this.#o.users;
      const filter = users ? fillTemplate(users.filter, { user: escapeFilterValue(username) }) : '(objectClass=*)';
      let entry: Entry | undefined;
      if (byDn) {
        try {
          entry = (await c.search(name, { scope: 'base', filter, attributes: this.#userAttributes() })).searchEntries[0];
        } catch (err) {
          if (!(err instanceof ResultCodeError)) throw err;
        }
        if (!entry || (users && !isUnder(entry.dn, users.base)))
          return { ok: false, why: 'disabled', reason: `the entry ${name} does not match the users filter or lies outside ${users?.base ?? 'the directory'}` };
      } else {
        // no entry to read by its name: the users filter finds it (options.ts requires users here), searched as the user
        const found = (await c.search(users!.base, { scope: 'sub', filter, sizeLimit: 2, attributes: this.#userAttributes() })).searchEntries;
        if (found.length === 0)
          return { ok: false, why: 'unknown-user', reason: `the bind as ${name} succeeded, but no entry under ${users!.base} matches the users filter` };
        if (found.length > 1) return { ok: false, why: 'ambiguous', reason: `the users filter matches more than one entry under ${users!.base}` };
        entry = found[0]!;
      }
      const disabled = await this.#disabled(c, entry);
      if (disabled) return { ok: false, why: 'disabled', reason: disabled };
      return { ok: true, dn: entry.dn, groups: await this.#groups(c, entry) };
    } finally {
      await c?.unbind().catch(() => undefined);
      free();
    }
  }

  #userAttributes(): string[] {
    const attrs = new Set(this.#o['attribute-groups'].map((a) => a.attribute));
    if (this.#o.groups.nested === 'member-of') attrs.add('memberOf');
    if (this.#o['active-directory']) attrs.add('userAccountControl');
    return attrs.size > 0 ? [...attrs] : ['1.1'];
  }

  /** Why the account is disabled, if it is. */
  async #disabled(c: Client, entry: Entry): Promise<string | undefined> {
    if (this.#o['active-directory']) {
      const uac = Number(values(entry, 'userAccountControl')[0] ?? 0);
      if (uac & AD_ACCOUNT_DISABLED) return 'account disabled (userAccountControl)';
    }
    const filter = this.#o.users?.['disabled-filter'];
    if (filter) {
      const hit = await c.search(entry.dn, { scope: 'base', filter, attributes: ['1.1'] });
      if (hit.searchEntries.length > 0) return 'account disabled (matches disabled-filter)';
    }
    return undefined;
  }

  /** The names of the user's groups (nested included), and the attribute groups. */
  async #groups(c: Client, user: Entry): Promise<string[]> {
    const g = this.#o.groups;
    const nameAttr = g['name-attribute'];
    const names = new Set<string>();
    const add = (entry: Entry) => {
      const n = values(entry, nameAttr)[0];
      if (n) names.add(n);
    };
    if (g.nested === 'ad-in-chain') {
      const filter = `(member:${AD_IN_CHAIN}:=${escapeFilterValue(user.dn)})`;
      for (const e of (await c.search(g.base!, { scope: 'sub', filter, attributes: [nameAttr], sizeLimit: MAX_GROUPS })).searchEntries) add(e);
    } else if (g.nested === 'member-of') {
      // memberOf lists direct groups; a group's own memberOf leads one level up
      const seen = new Set<string>();
      let level = await allValues(c, user, 'memberOf', MAX_GROUPS);
      for (let depth = 0; depth <= g['max-depth'] && level.length > 0 && seen.size < MAX_GROUPS; depth++) {
        const next: string[] = [];
        for (const dn of level) {
          const key = dn.toLowerCase();
          if (seen.has(key) || seen.size >= MAX_GROUPS) continue;
          seen.add(key);
          let entry: Entry | undefined;
          try {
            entry = (await c.search(dn, { scope: 'base', attributes: [nameAttr, 'memberOf'] })).searchEntries[0];
          } catch (err) {
            if (!(err instanceof ResultCodeError)) throw err;
          }
          if (!entry) continue;
          add(entry);
          next.push(...(await allValues(c, entry, 'memberOf', MAX_GROUPS)));
        }
        level = next;
      }
    } else if (g.nested === 'search') {
      const seen = new Set<string>([user.dn.toLowerCase()]);
      let level = [user.dn];
      for (let depth = 0; depth <= g['max-depth'] && level.length > 0 && seen.size <= MAX_GROUPS; depth++) {
        const members = level.map((dn) => `(member=${escapeFilterValue(dn)})(uniqueMember=${escapeFilterValue(dn)})`).join('');
        const found = await c.search(g.base!, { scope: 'sub', filter: `(|${members})`, attributes: [nameAttr], sizeLimit: MAX_GROUPS });
        level = [];
        for (const e of found.searchEntries) {
          const key = e.dn.toLowerCase();
          if (seen.has(key)) continue;
          seen.add(key);
          add(e);
          level.push(e.dn);
        }
      }
    }
    const out = [...names].map((n) => g.map[n] ?? n);
    for (const a of this.#o['attribute-groups']) if (values(user, a.attribute).includes(a.value)) out.push(a.group);
    return [...new Set(out)].slice(0, MAX_GROUPS);
  }

  /** For `flexscript check`: connects, binds the service account, looks at the bases. */
  async probe(): Promise<Probe> {
    const o = this.#o;
    const tls = o.url.startsWith('ldaps:') ? 'LDAPS' : o['start-tls'] ? 'StartTLS' : 'none (passwords cross the network in clear)';
    const c = await this.connect().catch((err) => {
      throw unreachable(err) ?? err;
    });
    try {
      let bind = 'anonymous (user binds only)';
      if (o.service) {
        try {
          await c.bind(o.service.dn, this.#servicePassword!);
        } catch (err) {
          throw unreachable(err) ?? tlsRequired(err) ?? new DirectoryUnreachable(`the service account ${o.service.dn} cannot bind: ${(err as Error).message}`);
        }
        bind = `service account ${o.service.dn}`;
      }
      const count = async (base: string, filter: string) => {
        try {
          return (await c.search(base, { scope: 'sub', filter, attributes: ['1.1'], sizeLimit: 1000 })).searchEntries.length;
        } catch (err) {
          if (err instanceof ResultCodeError && err.code === 4) return 1000; // size limit exceeded
          throw new DirectoryUnreachable(`cannot search ${base}: ${(err as Error).message}`);
        }
      };
      if (!o.service) return { server: o.url, tls, bind };
      const users = await count(o.users!.base, fillTemplate(o.users!.filter, { user: '*' }));
      const groups = o.groups.base ? await count(o.groups.base, '(|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))') : undefined;
      return { server: o.url, tls, bind, users, ...(groups === undefined ? {} : { groups }) };
    } finally {
      await c.unbind().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.#pool?.close();
  }
}

/** Whether `dn` lies under `base` (compared without case and spaces after commas). */
function isUnder(dn: string, base: string): boolean {
  const norm = (s: string) => s.replace(/,\s+/g, ',').toLowerCase();
  const d = norm(dn);
  const b = norm(base);
  return d === b || d.endsWith(`,${b}`);
}

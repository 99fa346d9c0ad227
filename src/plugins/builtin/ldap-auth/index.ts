/**
 * @module ldap-auth
 * Built-in plugin `ldap-auth`: checks a client's username and password against an LDAP
 * directory (Active Directory, OpenLDAP) and puts the client in its directory groups.
 *
 * Either it binds as the user (`user-dn` template), or it searches the user with a service
 * account (`service`, its password read from a file only the daemon can read) and then binds as
 * the entry found. An empty password is refused without asking the directory (an LDAP bind
 * without a password is an anonymous bind, which succeeds). Failures are limited per user and
 * per address as in password-auth; successful logins are remembered for a short `cache.ttl`
 * (by username and a keyed hash of the password), failures never. When the directory cannot be
 * reached the client is denied (fails closed), with the reason in the log.
 *
 * The log gets the reason; the client gets only `client-reason`.
 *
 * @example
 * plugins:
 *   - use: ldap-auth
 *     timeout: 10s
 *     options:
 *       url: ldaps://dc1.example.com
 *       ca: /etc/flexscript/ldap-ca.pem
 *       service: { dn: "CN=flexscript,OU=Services,DC=example,DC=com", password-file: /etc/flexscript/ldap-password }
 *       users: { base: "OU=Staff,DC=example,DC=com", filter: "(&(objectClass=user)(sAMAccountName={user}))" }
 *       groups: { nested: ad-in-chain, base: "OU=Groups,DC=example,DC=com" }
 *       required-groups: [vpn-users]
 *       active-directory: true
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { limiterOptions } from '../../../util/login-limits.ts';
import { addressKey, RateLimiter } from '../../../util/rate-limit.ts';
import { Directory, DirectoryUnreachable } from './directory.ts';
import { LoginCache } from './login-cache.ts';
import { type LdapAuthOptions, ldapAuthSchema } from './options.ts';
import { readSecretFile } from './secret-file.ts';
import type { PluginDefinition } from '../../plugin-api.ts';

function readCa(file: string): string {
  const text = readFileSync(file, 'utf8');
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  try {
    if (!first) throw new Error('no certificate');
    new X509Certificate(first);
  } catch {
    throw new Error(`${file} holds no PEM certificate`);
  }
  return text;
}

const ldapAuth: PluginDefinition<LdapAuthOptions> = {
  name: 'ldap-auth',
  options: (z) => ldapAuthSchema(z) as never,

  setup({ options, log, configDir }) {
    const ca = options.ca === undefined ? undefined : readCa(resolve(configDir, options.ca));
    const servicePassword = options.service ? readSecretFile(resolve(configDir, options.service['password-file'])) : undefined;
    if (options.url.startsWith('ldap:') && !options['start-tls'])
      log.warn({ url: options.url }, 'passwords go to the directory unencrypted: use ldaps:// or start-tls: true');
    const directory = new Directory(options, { ...(ca === undefined ? {} : { ca }), ...(servicePassword === undefined ? {} : { servicePassword }) });
    const cache = new LoginCache<readonly string[]>(options.cache.ttl, options.cache['max-entries']);
    // directory outages, for the alert an operator wants (flexscript_plugin_events_total)
    let unreachable = 0;
    const byUser = new RateLimiter(limiterOptions(options.limits.user));
    const byAddress = new RateLimiter(limiterOptions(options.limits.address));
    const required = options['required-groups'] ? new Set(options['required-groups']) : undefined;
    const generic = options['client-reason'];

    return {
      // a username this plugin lets through is the client's identity from client-connect on
      verifiesUsernames: true,
      'user-pass-verify': async (event, ctx) => {
        const username = event.username;
        const password = event.password ?? '';
        const where = event.realAddress === undefined ? '(unknown address)' : addressKey(event.realAddress);
        for (const [what, limiter, key] of [
          ['user', byUser, username],
          ['address', byAddress, where],
        ] as const) {
          const c = limiter.check(key);
          if (c.locked) return ctx.deny(`${what} locked out after repeated failures (${Math.ceil(c.retryAfterMs / 1000)} s left)`, generic);
        }
        const fail = (reason: string) => {
          const lockedUser = byUser.failure(username);
          const lockedAddress = byAddress.failure(where);
          const lock = [lockedUser && `user locked out for ${lockedUser / 1000} s`, lockedAddress && `address locked out for ${lockedAddress / 1000} s`].filter(
            Boolean,
          );
          cache.delete(username);
          ctx.deny([reason, ...lock].join('; '), generic);
        };
        // an LDAP bind with an empty password is an anonymous bind, and succeeds
        if (password === '') return fail('empty password (refused without asking the directory)');
        if (username === '') return fail('empty username');
        if (username.length > options['max-username']) return fail(`username longer than ${options['max-username']} characters`);

        let groups = cache.get(username, password);
        if (!groups) {
          try {
            const login = await directory.login(username, password, ctx.signal);
            if (!login.ok) return fail(login.reason);
            groups = login.groups;
          } catch (err) {
            // not the client's failure: no rate-limit strike, but no entry either (fails closed)
            if (err instanceof DirectoryUnreachable) {
              unreachable++;
              return ctx.deny(`directory unreachable: ${err.message}`, generic);
            }
            throw err;
          }
          cache.set(username, password, groups);
        }
        byUser.success(username);
        if (required && !groups.some((g) => required.has(g))) return ctx.deny(`user is in none of the required groups (${[...required].join(', ')})`, generic);
        // the directory decides her groups now, none included (removed from every group)
        ctx.addGroups(...groups);
      },
      check: async () => {
        try {
          const p = await directory.probe();
          const found = [`server ${p.server}`, `TLS ${p.tls}`, `bind ${p.bind}`];
          if (p.users !== undefined) found.push(`${p.users === 1000 ? '1000 or more' : p.users} user entries under ${options.users!.base}`);
          if (p.groups !== undefined) found.push(`${p.groups === 1000 ? '1000 or more' : p.groups} groups under ${options.groups.base}`);
          return { ok: true, message: found.join('; ') };
        } catch (err) {
          return { ok: false, message: `cannot reach the directory at ${options.url}: ${(err as Error).message}` };
        }
      },
      counters: () => ({ directory_unreachable: unreachable }),
      close: () => directory.close(),
    };
  },
};

export default ldapAuth;

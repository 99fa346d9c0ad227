/**
 * @module bench-logins
 * The logins of the benchmark's `ldap-totp` mode: a real OpenLDAP server (src/lab/slapd.ts) in
 * the benchmark's network namespace with one user per client, all in a group nested in the
 * required one, a TOTP secret per user in a file only the daemon's group reads, and the two
 * plugins as a deployment configures them: `ldap-auth` (search with a service account, then
 * bind as the user; StartTLS with a pinned CA; nested groups by search; a required group) and
 * `totp` (static challenge).
 */
import { chownSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { RUN_AS } from '../lab/daemon-process.ts';
import type { Lab } from '../lab/lab.ts';
import { crowdUser, startSlapd } from '../lab/slapd.ts';

export interface BenchLogins {
  /** The two plugins' entries (YAML lines under `plugins:`). */
  readonly pluginsYaml: string;
  /** Client `i`'s username and password, its one-time code made now. */
  credentials(i: number): { readonly username: string; readonly password: string };
}

/**
 * Codes are made as each client starts, and a storm of hundreds of clients takes longer to
 * start than a 30-second step: the plugin accepts codes up to 10 steps (5 minutes) old. A code
 * outside the steps next to now costs one more HMAC-SHA1 each (tens of microseconds in all,
 * next to milliseconds of directory round trips).
 */
const WINDOW_STEPS = 10;

/** Starts the directory for `clients` users (stopped and removed when `lab` closes). */
export async function benchLogins(lab: Lab, clients: number, netns: string): Promise<BenchLogins> {
  if (!existsSync('/usr/sbin/slapd')) throw new Error('mode ldap-totp needs OpenLDAP (the Debian package slapd)');
  const slapd = await startSlapd({ after: (fn) => lab.track(fn) }, { netns, base: lab.dir, crowd: clients });
  const totps = Array.from({ length: clients }, () => new TOTP({ secret: new Secret({ size: 20 }), algorithm: 'SHA1', digits: 6, period: 30 }));
  const secrets = join(lab.dir, 'totp-secrets');
  writeFileSync(secrets, totps.map((t, i) => `${crowdUser(i).username}:${t.secret.base32}\n`).join(''), { mode: 0o640 });
  chownSync(secrets, 0, RUN_AS.gid);
  const pluginsYaml = `  - use: ldap-auth
    timeout: 10s
    options:
      url: ${slapd.url}
      start-tls: true
      ca: ${slapd.ca}
      service: { dn: "${slapd.serviceDn}", password-file: ${slapd.servicePasswordFile} }
      users: { base: "ou=people,${slapd.base}", filter: "(&(objectClass=inetOrgPerson)(uid={user}))" }
      groups: { nested: search, base: "ou=groups,${slapd.base}" }
      required-groups: [vpn-users]
  - use: totp
    options:
      file: ${secrets}
      mode: static
      window: ${WINDOW_STEPS}
`;
  return {
    pluginsYaml,
    credentials(i) {
      const { username, password } = crowdUser(i);
      // what a client with `static-challenge` sends: an OpenVPN client without that line sends
      // its auth-user-pass password as it is, so the server sees the same SCRV1 password
      const code = totps[i]!.generate();
      return { username, password: `SCRV1:${Buffer.from(password).toString('base64')}:${Buffer.from(code).toString('base64')}` };
    },
  };
}

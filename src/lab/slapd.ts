/**
 * @module slapd
 * A throwaway OpenLDAP server for tests: Debian's `slapd` started from a `slapd -f` config in a
 * temporary folder, running as the `openldap` user (when started by root), with the mdb backend
 * and the memberof overlay, listening on free loopback ports: `ldap://` (StartTLS offered) and
 * `ldaps://`, both with a certificate from a throwaway CA that names 127.0.0.1 and localhost
 * (the server also listens on 127.0.0.2, which its certificate does not name). A second CA
 * signed nothing the server uses.
 *
 * The tree (loaded through the protocol, so the overlay maintains `memberOf`):
 * - `ou=people`: alice (department Ops; in ops-team, nested into vpn-users; in admins through
 *   `uniqueMember`; in a member cycle), bob (in no group), carol (in vpn-users directly), and a
 *   user whose uid is full of DN and filter metacharacters (in vpn-users);
 *   dave (disabled: `employeeType: disabled`, the mark a `disabled-filter` looks for), and erin
 *   and frank with Active Directory's `sAMAccountName` and `userAccountControl` (frank's says
 *   disabled);
 * - `ou=services`: the service account `cn=flexscript`, its password in a 0600 file;
 * - `ou=groups`: vpn-users ⊃ ops-team ∋ alice, admins (groupOfUniqueNames), loop-a ⇄ loop-b.
 *
 * With `crowd: N` (storms), N more users `crowd-0` … `crowd-(N-1)` (`crowdUser(i)` gives the
 * name and password), all in the group `crowd`, which is nested in vpn-users.
 *
 * With `netns`, slapd runs inside that network namespace, where the daemon under test reaches it
 * on the namespace's loopback. The lab itself always talks to it over a unix socket (`ldapi://`
 * in its folder), which works from any namespace.
 *
 * Stopped and removed by `close()`; `stop()` only stops it (the directory goes down).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attribute, Change, Client } from 'ldapts';
import { makeCert } from './certificate.ts';
import { freeLoopbackPort, spawnServer, type ServerProcess } from './server-process.ts';
import { waitFor } from './wait.ts';

const SLAPD_BASE = 'dc=example,dc=test';

/** The users in the tree and their passwords. */
export const LDAP_USERS = {
  alice: 'Alice-Ldap-Pa55',
  bob: 'Bob-Ldap-Pa55',
  carol: 'Carol-Ldap-Pa55',
  dave: 'Dave-Ldap-Pa55',
  erin: 'Erin-Ldap-Pa55',
  frank: 'Frank-Ldap-Pa55',
  /** A uid with every DN and filter metacharacter, a leading `#` and space, and non-ASCII text. */
  hostile: { uid: '#ev*l, (uid=*)\\ "Zoë"+<x>;雪 ', password: 'Hostile-Ldap-Pa55' },
} as const;

/** One of the `crowd` users: its username and password. */
export function crowdUser(i: number): { readonly username: string; readonly password: string } {
  return { username: `crowd-${i}`, password: `Crowd-${i}-Ldap-Pa55` };
}

export interface SlapdOptions {
  /** Run slapd inside this network namespace (its loopback must be up). */
  readonly netns?: string;
  /** Where its folder is made (default: the system's temp directory). */
  readonly base?: string;
  /** How many `crowd` users to add (default none). */
  readonly crowd?: number;
}

export interface Slapd {
  readonly dir: string;
  /** `ldap://127.0.0.1:PORT` (StartTLS offered). */
  readonly url: string;
  /** `ldaps://127.0.0.1:PORT`. */
  readonly ldapsUrl: string;
  /** `ldaps://127.0.0.2:PORT`: an address the server's certificate does not name. */
  readonly unnamedLdapsUrl: string;
  readonly base: string;
  /** The CA that signed the server's certificate (PEM file), and one that did not. */
  readonly ca: string;
  readonly otherCa: string;
  readonly serviceDn: string;
  /** The service account's password, first line of a 0600 file owned by the daemon's user. */
  readonly servicePasswordFile: string;
  readonly running: boolean;
  /** Stops the server (the directory goes down); `close()` still cleans up. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

const SLAPD_USER = { name: 'openldap', uid: 0, gid: 0 };

function slapdAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', SLAPD_USER.name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', SLAPD_USER.name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function slapdConf(dir: string, adminPassword: string): string {
  return `# throwaway test directory
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include ${dir}/ad-account.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile ${dir}/pki/ca.crt
TLSCertificateFile ${dir}/pki/server.crt
TLSCertificateKeyFile ${dir}/pki/server.key
database mdb
maxsize 16777216
suffix "${SLAPD_BASE}"
rootdn "cn=admin,${SLAPD_BASE}"
rootpw ${adminPassword}
directory ${dir}/db
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by * none
`;
}

/** Starts a throwaway slapd; `after` registers its cleanup first, so a failed start is cleaned up too. */
export async function startSlapd(t: { after(fn: () => unknown): void }, o: SlapdOptions = {}): Promise<Slapd> {
  const dir = await mkdtemp(join(o.base ?? tmpdir(), 'fxs-slapd-'));
  let server: ServerProcess | undefined;
  const stop = async () => server?.stop();
  const close = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  t.after(close);

  const account = slapdAccount();
  const own = (p: string) => account && chownSync(p, account.uid, account.gid);
  own(dir);
  // the daemon under test (another user) reads the CA and its password file in here
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'db'), { mode: 0o700 });
  own(join(dir, 'db'));
  const pki = join(dir, 'pki');
  mkdirSync(pki, { mode: 0o755 });
  makeCert(pki, 'ca', '/CN=flexscript slapd test CA');
  makeCert(pki, 'other-ca', '/CN=flexscript other CA');
  makeCert(pki, 'server', '/CN=localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  execFileSync('chmod', ['0644', ...['ca.crt', 'other-ca.crt', 'server.crt'].map((f) => join(pki, f))]);
  execFileSync('chmod', ['0600', join(pki, 'server.key')]);
  own(join(pki, 'server.key'));

  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  const servicePassword = `svc-${Math.random().toString(36).slice(2)}`;
  const conf = join(dir, 'slapd.conf');
  writeFileSync(conf, slapdConf(dir, adminPassword), { mode: 0o640 });
  // two of Active Directory's user attributes, with AD's OIDs (all of msuser.schema would
  // redefine memberOf, which the memberof overlay maintains)
  writeFileSync(
    join(dir, 'ad-account.schema'),
    [
      "attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )",
      "attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  own(conf);
  // the daemon (nobody in the tests) reads the service password: its own file, mode 0600
  const servicePasswordFile = join(dir, 'service-password');
  writeFileSync(servicePasswordFile, `${servicePassword}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) chownSync(servicePasswordFile, 65534, 65534);

  const port = await freeLoopbackPort();
  const ldapsPort = await freeLoopbackPort();
  const ldapi = join(dir, 'ldapi');
  const urls = [`ldap://127.0.0.1:${port}/`, `ldaps://127.0.0.1:${ldapsPort}/`, `ldaps://127.0.0.2:${ldapsPort}/`, `ldapi://${encodeURIComponent(ldapi)}`];
  const slapd = spawnServer(['/usr/sbin/slapd', '-d', '0', '-f', conf, '-h', urls.join(' ')], { user: account, netns: o.netns });
  server = slapd;

  const url = `ldap://127.0.0.1:${port}`;
  const adminDn = `cn=admin,${SLAPD_BASE}`;
  // the lab's own connections: the unix socket, reachable from outside the namespace too
  const admin = (timeout: number) =>
    new Client({ url: 'ldap://localhost', connectTimeout: 1000, timeout, createConnection: (() => connect(ldapi)) as typeof connect });
  await waitFor(
    'slapd to answer',
    async () => {
      if (!slapd.running) throw new Error(`slapd exited: ${slapd.output()}`);
      const c = admin(2000);
      try {
        await c.bind(adminDn, adminPassword);
        return true;
      } catch {
        return false;
      } finally {
        await c.unbind().catch(() => undefined);
      }
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  await loadTree(admin(5000), adminDn, adminPassword, servicePassword, o.crowd ?? 0);
  return {
    dir,
    url,
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    unnamedLdapsUrl: `ldaps://127.0.0.2:${ldapsPort}`,
    base: SLAPD_BASE,
    ca: join(pki, 'ca.crt'),
    otherCa: join(pki, 'other-ca.crt'),
    serviceDn: `cn=flexscript,ou=services,${SLAPD_BASE}`,
    servicePasswordFile,
    get running() {
      return slapd.running;
    },
    stop,
    close,
  };
}

/** The tree, added in an order that lets the memberof overlay see every member (groups last). */
async function loadTree(c: Client, adminDn: string, adminPassword: string, servicePassword: string, crowd: number): Promise<void> {
  await c.bind(adminDn, adminPassword);
  try {
    const b = SLAPD_BASE;
    const ou = (name: string) => c.add(`ou=${name},${b}`, { objectClass: ['organizationalUnit'], ou: name });
    await c.add(b, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
    for (const name of ['people', 'services', 'groups']) await ou(name);
    const person = (uid: string, password: string, where: string, extra: Record<string, string> = {}) =>
      c.add(`uid=${escapeRdn(uid)},ou=${where},${b}`, {
        objectClass: ['inetOrgPerson'],
        uid,
        cn: uid,
        sn: uid.trim() || 'x',
        userPassword: password,
        ...extra,
      });
    await person('alice', LDAP_USERS.alice, 'people', { departmentNumber: 'Ops' });
    await person('bob', LDAP_USERS.bob, 'people');
    await person('carol', LDAP_USERS.carol, 'people');
    await person(LDAP_USERS.hostile.uid, LDAP_USERS.hostile.password, 'people');
    await person('dave', LDAP_USERS.dave, 'people', { employeeType: 'disabled' });
    // Active Directory's account flags (ad-account.schema): erin is enabled (512), frank disabled (514)
    for (const [uid, flags] of [
      ['erin', '512'],
      ['frank', '514'],
    ] as const)
      await c.add(`uid=${uid},ou=people,${b}`, {
        objectClass: ['inetOrgPerson', 'extensibleObject'],
        uid,
        cn: uid,
        sn: uid,
        sAMAccountName: uid,
        userAccountControl: flags,
        userPassword: LDAP_USERS[uid],
      });
    await c.add(`cn=flexscript,ou=services,${b}`, {
      objectClass: ['applicationProcess', 'simpleSecurityObject'],
      cn: 'flexscript',
      userPassword: servicePassword,
    });
    const user = (uid: string) => `uid=${escapeRdn(uid)},ou=people,${b}`;
    const group = (cn: string) => `cn=${cn},ou=groups,${b}`;
    const crowdUsers = Array.from({ length: crowd }, (_, i) => crowdUser(i));
    for (const u of crowdUsers) await person(u.username, u.password, 'people');
    await c.add(group('ops-team'), { objectClass: ['groupOfNames'], cn: 'ops-team', member: [user('alice')] });
    if (crowd > 0) await c.add(group('crowd'), { objectClass: ['groupOfNames'], cn: 'crowd', member: crowdUsers.map((u) => user(u.username)) });
    await c.add(group('vpn-users'), {
      objectClass: ['groupOfNames'],
      cn: 'vpn-users',
      member: [group('ops-team'), user('carol'), user(LDAP_USERS.hostile.uid), ...(crowd > 0 ? [group('crowd')] : [])],
    });
    await c.add(group('admins'), { objectClass: ['groupOfUniqueNames'], cn: 'admins', uniqueMember: [user('alice')] });
    await c.add(group('loop-a'), { objectClass: ['groupOfNames'], cn: 'loop-a', member: [user('alice')] });
    await c.add(group('loop-b'), { objectClass: ['groupOfNames'], cn: 'loop-b', member: [group('loop-a')] });
    await c.modify(group('loop-a'), new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [group('loop-b')] }) }));
  } finally {
    await c.unbind();
  }
}

/** RFC 4514 escaping of an RDN value (the lab's own copy: the lab does not import plugins). */
function escapeRdn(value: string): string {
  return value
    .replace(/[\\"+,;<>=]/g, (ch) => `\\${ch}`)
    .replace(/\0/g, '\\00')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

/**
 * @module samba-ad
 * A throwaway Active Directory for tests: a Samba AD domain controller from Debian's packages
 * (`samba`, `samba-ad-dc`), provisioned with `samba-tool domain provision` into a temporary
 * folder that holds all of its state, and run in the foreground (`samba -i -M single`) with only
 * its LDAP service. Samba implements what slapd does not: Active Directory's in-chain matching
 * rule (`1.2.840.113556.1.4.1941`), `userAccountControl`, `sAMAccountName` and
 * `userPrincipalName`, AD's bind error sub-codes, referrals from the domain root, and its refusal
 * of simple binds without TLS.
 *
 * Provisioning takes half a minute or more: a test file provisions once (`provisionSambaAd`) and
 * starts the server as often as it needs (`start`), one at a time. AD's ports are fixed (389,
 * 636), so the server listens either on a loopback address of its own (127.64.0.0/10, chosen at
 * provisioning) or inside a network namespace on 127.0.0.1. Its certificate comes from a
 * throwaway CA and names both addresses and the server's DNS name. The server exits when the
 * test process goes away (interactive samba ends when its stdin closes).
 *
 * The domain `ad.example.test` (NetBIOS `EXAMPLE`):
 * - `OU=Staff`: alice (in Ops Team, which is in VPN Admins, which is in VPN Users), carol (in
 *   VPN Users directly), bob (in no group), dave (in VPN Users, disabled);
 * - `OU=Service Accounts`: `svc-vpn`, a plain user; its password in a 0600 file;
 * - `OU=Groups`: VPN Users ⊃ VPN Admins ⊃ Ops Team.
 *
 * Stopped and removed by `close()`.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ldapts';
import { makeCert } from './certificate.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

export const SAMBA = '/usr/sbin/samba';
const SAMBA_TOOL = '/usr/bin/samba-tool';
const REALM = 'ad.example.test';
const BASE = 'DC=ad,DC=example,DC=test';
const HOST = 'dc1';

/** The users of the domain and their passwords (AD's default complexity rules hold). */
export const AD_USERS = {
  alice: 'Alice-Ad-Pa55',
  bob: 'Bob-Ad-Pa55',
  carol: 'Carol-Ad-Pa55',
  dave: 'Dave-Ad-Pa55',
} as const;

export interface SambaAd {
  readonly dir: string;
  /** The DNS domain, `ad.example.test`: `alice@ad.example.test` is alice's userPrincipalName. */
  readonly realm: string;
  /** `DC=ad,DC=example,DC=test`. */
  readonly base: string;
  /** `OU=Staff,…` and `OU=Groups,…`. */
  readonly staff: string;
  readonly groups: string;
  /** The CA that signed the server's certificate (PEM file). */
  readonly ca: string;
  readonly serviceDn: string;
  /** The service account's password, first line of a 0600 file owned by the daemon's user. */
  readonly servicePasswordFile: string;
  /** Starts the domain controller (stopping one still running): inside `netns` on 127.0.0.1, or on the domain's own loopback address. */
  start(o?: { readonly netns?: string }): Promise<SambaAdServer>;
  close(): Promise<void>;
}

interface SambaAdServer {
  /** `ldap://ADDRESS` (StartTLS offered; simple binds refused without TLS, as AD does). */
  readonly url: string;
  /** `ldaps://ADDRESS`. */
  readonly ldapsUrl: string;
  readonly running: boolean;
  stop(): Promise<void>;
}

/** A loopback address whose LDAP ports are free (the whole of 127.0.0.0/8 is local on Linux). */
async function freeLoopbackAddress(): Promise<string> {
  const listens = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 20; i++) {
    const r = (n: number) => Math.floor(Math.random() * n);
    const address = `127.${64 + r(64)}.${r(256)}.${1 + r(254)}`;
    if ((await listens(address, 389)) && (await listens(address, 636))) return address;
  }
  throw new Error('no loopback address with ports 389 and 636 free');
}

/** The server's configuration: every path inside `dir`, only the LDAP service, one address. */
function smbConf(dir: string, address: string): string {
  return `# throwaway test domain controller
[global]
	netbios name = ${HOST.toUpperCase()}
	realm = ${REALM.toUpperCase()}
	workgroup = EXAMPLE
	server role = active directory domain controller
	server services = ldap
	interfaces = ${address}/8
	bind interfaces only = yes
	private dir = ${dir}/private
	state directory = ${dir}/state
	cache directory = ${dir}/cache
	lock directory = ${dir}
	pid directory = ${dir}/run
	ncalrpc dir = ${dir}/run/ncalrpc
	winbindd socket directory = ${dir}/run/winbindd
	ntp signd socket directory = ${dir}/run/ntp_signd
	binddns dir = ${dir}/bind-dns
	logging = stdout
	log level = 1
	tls enabled = yes
	tls keyfile = ${dir}/pki/dc.key
	tls certfile = ${dir}/pki/dc.crt
	tls cafile = ${dir}/pki/ca.crt
	idmap_ldb:use rfc2307 = yes
`;
}

/** Provisions a throwaway domain; `after` registers its cleanup first, so a failed provisioning is cleaned up too. */
export async function provisionSambaAd(t: { after(fn: () => unknown): void }, o: { readonly base?: string } = {}): Promise<SambaAd> {
  const dir = await mkdtemp(join(o.base ?? tmpdir(), 'fxs-samba-'));
  let server: ServerProcess | undefined;
  const stop = async () => {
    const s = server;
    server = undefined;
    await s?.stop();
  };
  const close = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  t.after(close);

  // the daemon under test (another user) reads the CA and the service password in here
  chmodSync(dir, 0o755);
  const address = await freeLoopbackAddress();
  const r = () => Math.random().toString(36).slice(2, 10);
  const adminPassword = `Adm1n-${r()}-X`;
  const servicePassword = `Svc-${r()}-9x`;
  const conf = join(dir, 'etc', 'smb.conf');
  const tool = (...args: string[]) => run(SAMBA_TOOL, [...args, '-s', conf], { maxBuffer: 16 << 20 });
  // provisioning starts from an empty configuration, not from the machine's /etc/samba/smb.conf
  mkdirSync(join(dir, 'etc'));
  writeFileSync(conf, '');
  try {
    await run(
      SAMBA_TOOL,
      [
        'domain',
        'provision',
        '-s',
        conf,
        `--targetdir=${dir}`,
        `--realm=${REALM.toUpperCase()}`,
        '--domain=EXAMPLE',
        `--host-name=${HOST}`,
        '--server-role=dc',
        '--dns-backend=NONE',
        '--use-rfc2307',
        `--adminpass=${adminPassword}`,
      ],
      { maxBuffer: 16 << 20 },
    );
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`samba-tool domain provision failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
  for (const d of ['run', 'cache']) mkdirSync(join(dir, d), { recursive: true });
  const pki = join(dir, 'pki');
  mkdirSync(pki, { mode: 0o755 });
  makeCert(pki, 'ca', '/CN=flexscript samba test CA');
  makeCert(
    pki,
    'dc',
    `/CN=${HOST}.${REALM}`,
    'ca',
    `subjectAltName=DNS:${HOST}.${REALM},DNS:${REALM},IP:${address},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`,
  );
  chmodSync(join(pki, 'ca.crt'), 0o644);
  // samba refuses a key anyone else can read
  chmodSync(join(pki, 'dc.key'), 0o600);
  writeFileSync(conf, smbConf(dir, address));

  // the tree, offline on the provisioned database; independent steps at once
  const staff = `OU=Staff,${BASE}`;
  const groups = `OU=Groups,${BASE}`;
  const services = `OU=Service Accounts,${BASE}`;
  const users = Object.entries(AD_USERS) as [keyof typeof AD_USERS, string][];
  await Promise.all([staff, groups, services].map((ou) => tool('ou', 'add', ou)));
  await Promise.all([
    ...users.map(([name, password]) => tool('user', 'add', name, password, '--userou=OU=Staff')),
    tool('user', 'add', 'svc-vpn', servicePassword, '--userou=OU=Service Accounts', '--description=flexscript reads users and groups'),
    ...['VPN Users', 'VPN Admins', 'Ops Team'].map((g) => tool('group', 'add', g, '--groupou=OU=Groups')),
  ]);
  await Promise.all([
    tool('group', 'addmembers', 'VPN Users', 'VPN Admins,carol,dave'),
    tool('group', 'addmembers', 'VPN Admins', 'Ops Team'),
    tool('group', 'addmembers', 'Ops Team', 'alice'),
    tool('user', 'disable', 'dave'),
  ]);

  // the daemon (nobody in the tests) reads the service password: its own file, mode 0600
  const servicePasswordFile = join(dir, 'service-password');
  writeFileSync(servicePasswordFile, `${servicePassword}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) chownSync(servicePasswordFile, 65534, 65534);

  const start = async (so: { readonly netns?: string } = {}): Promise<SambaAdServer> => {
    await stop();
    const at = so.netns ? '127.0.0.1' : address;
    writeFileSync(conf, smbConf(dir, at));
    // stdin stays open: interactive samba exits when it closes, so also when this process dies
    const mine = spawnServer([SAMBA, '-i', '-M', 'single', '-s', conf], { netns: so.netns, keepStdin: true });
    server = mine;
    // the lab's probe goes over the unix socket, which works from outside the namespace too
    const ldapi = join(dir, 'private', 'ldapi');
    await waitFor(
      'samba to answer LDAP',
      async () => {
        if (!mine.running) throw new Error(`samba exited: ${mine.output()}`);
        const c = new Client({ url: 'ldap://localhost', connectTimeout: 1000, timeout: 3000, createConnection: (() => connect(ldapi)) as typeof connect });
        try {
          const root = await c.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['dsServiceName'] });
          if (root.searchEntries.length === 0) return false;
          if (!so.netns) await tcpOpen(at, 636);
          return true;
        } catch {
          return false;
        } finally {
          await c.unbind().catch(() => undefined);
        }
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    return {
      url: `ldap://${at}`,
      ldapsUrl: `ldaps://${at}`,
      get running() {
        return server === mine && mine.running;
      },
      stop: () => (server === mine ? stop() : Promise.resolve()),
    };
  };

  return {
    dir,
    realm: REALM,
    base: BASE,
    staff,
    groups,
    ca: join(pki, 'ca.crt'),
    serviceDn: `CN=svc-vpn,${services}`,
    servicePasswordFile,
    start,
    close,
  };
}

function tcpOpen(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

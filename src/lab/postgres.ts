/**
 * @module postgres
 * A throwaway PostgreSQL server for a test or the benchmark: initdb into a temporary folder (as the postgres
 * user, since the server refuses to run as root), listening on a free loopback port, with a
 * role `flexscript` whose password is in a file and a database `flexscript`. Stopped and
 * removed after the test, also when it fails.
 *
 * With `tls: true` the server takes only TLS connections (`hostssl` in pg_hba.conf), with a
 * throwaway CA made with openssl: a server certificate naming 127.0.0.1 and db.test (the server
 * also listens on 127.0.0.2, an address its certificate does not name), a client certificate for
 * the role `flexcert` (`cert` authentication, database `flexcert`), and a second CA that signed
 * nothing the server uses.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from './certificate.ts';
import { asUser, freeLoopbackPort } from './server-process.ts';

/** Where the server's stop and removal are registered: a test's `t.after`, or a lab's `track`. */
export type Cleanup = (step: () => Promise<void> | void) => void;

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly passwordFile: string;
  /** YAML lines for the daemon's `store:` section. */
  readonly yaml: string[];
  readonly tls?: PostgresTls;
}

interface PostgresTls {
  /** The CA that signed the server's and the client's certificates (PEM). */
  readonly ca: string;
  /** A CA that signed neither. */
  readonly otherCa: string;
  /** An address the server listens on that its certificate does not name. */
  readonly unnamedHost: string;
  /** Client certificate and key (root-owned, 0600) for the role and database `flexcert`. */
  readonly clientCert: string;
  readonly clientKey: string;
  readonly certUser: string;
}

export function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  return version ? join(base, version, 'bin') : undefined;
}

/** The server refuses to run as root: it and its tools run as the postgres user. */
const POSTGRES = { uid: 'postgres', gid: 'postgres' };

const asPostgres = (bin: string, args: string[]) => {
  const [command, ...rest] = asUser(POSTGRES, [bin, ...args]);
  return execFileSync(command!, rest, { stdio: 'pipe' });
};

function makePki(dir: string): void {
  mkdirSync(dir, { mode: 0o755 });
  makeCert(dir, 'ca', '/CN=flexscript test CA');
  makeCert(dir, 'other-ca', '/CN=flexscript other CA');
  makeCert(dir, 'server', '/CN=db.test', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:db.test\nextendedKeyUsage=serverAuth\n');
  makeCert(dir, 'client', '/CN=flexcert', 'ca', 'extendedKeyUsage=clientAuth\n');
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), f.endsWith('.key') ? 0o600 : 0o644);
}

export interface PostgresOptions {
  readonly tls?: boolean;
  /** Extra server settings (`-c name=value`), e.g. the benchmark's `shared_preload_libraries=pg_stat_statements`. */
  readonly settings?: readonly string[];
}

export async function startPostgres(after: Cleanup, o: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const dir = await mkdtemp(join(tmpdir(), 'fxs-pg-'));
  await chmod(dir, 0o755);
  const data = join(dir, 'data');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwfile = join(dir, 'initdb-password');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  let started = false;
  after(async () => {
    if (started) {
      const [command, ...rest] = asUser(POSTGRES, [join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']);
      spawnSync(command!, rest, { stdio: 'ignore' });
    }
    await rm(dir, { recursive: true, force: true });
  });
  asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'flexscript',
    '--pwfile',
    pwfile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const port = await freeLoopbackPort();
  const extra = (o.settings ?? []).map((setting) => ` -c ${setting}`).join('');
  let serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on${extra}`;
  const pki = join(dir, 'pki');
  if (o.tls) {
    makePki(pki);
    // the server's key is the server's; the rest stays root's
    const serverKey = join(dir, 'server.key');
    copyFileSync(join(pki, 'server.key'), serverKey);
    execFileSync('chown', ['postgres:postgres', serverKey]);
    writeFileSync(
      join(data, 'pg_hba.conf'),
      [
        'local all all trust',
        'hostssl all flexcert 127.0.0.0/8 cert',
        'hostssl all flexscript 127.0.0.0/8 scram-sha-256',
        'hostnossl all all 127.0.0.0/8 reject',
        '',
      ].join('\n'),
    );
    serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1,127.0.0.2 -c fsync=on -c ssl=on -c ssl_cert_file=${join(pki, 'server.crt')} -c ssl_key_file=${serverKey} -c ssl_ca_file=${join(pki, 'ca.crt')}${extra}`;
  }
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', serverOptions, 'start']);
  started = true;
  asPostgres(join(bin, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'flexscript', 'flexscript']);
  if (o.tls) {
    asPostgres(join(bin, 'createuser'), ['-h', dir, '-p', String(port), '-U', 'flexscript', 'flexcert']);
    asPostgres(join(bin, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'flexscript', '-O', 'flexcert', 'flexcert']);
  }
  // the daemon's copy of the password: readable by the daemon's user (nobody) only
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  await chown(passwordFile, 65534, 65534);
  return {
    host: '127.0.0.1',
    port,
    database: 'flexscript',
    user: 'flexscript',
    passwordFile,
    yaml: [
      'store:',
      '  postgres:',
      '    host: 127.0.0.1',
      `    port: ${port}`,
      '    database: flexscript',
      '    user: flexscript',
      `    password-file: ${passwordFile}`,
    ],
    ...(o.tls
      ? {
          tls: {
            ca: join(pki, 'ca.crt'),
            otherCa: join(pki, 'other-ca.crt'),
            unnamedHost: '127.0.0.2',
            clientCert: join(pki, 'client.crt'),
            clientKey: join(pki, 'client.key'),
            certUser: 'flexcert',
          },
        }
      : {}),
  };
}

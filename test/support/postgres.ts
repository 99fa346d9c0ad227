/**
 * A throwaway PostgreSQL server for a test: initdb into a temporary folder (as the postgres
 * user, since the server refuses to run as root), listening on a free loopback port, with a
 * role `flexscript` whose password is in a file and a database `flexscript`. Stopped and
 * removed after the test, also when it fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freeLoopbackPort } from './free-port.ts';

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly passwordFile: string;
  /** YAML lines for the daemon's `store:` section. */
  readonly yaml: string[];
}

export function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  return version ? join(base, version, 'bin') : undefined;
}

const asPostgres = (bin: string, args: string[]) => execFileSync('setpriv', ['--reuid', 'postgres', '--regid', 'postgres', '--clear-groups', '--', bin, ...args], { stdio: 'pipe' });

export async function startPostgres(t: TestContext): Promise<PostgresServer> {
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
  t.after(async () => {
    if (started) spawnSync('setpriv', ['--reuid', 'postgres', '--regid', 'postgres', '--clear-groups', '--', join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  });
  asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'flexscript', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const port = await freeLoopbackPort();
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on`, 'start']);
  started = true;
  asPostgres(join(bin, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'flexscript', 'flexscript']);
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
    yaml: ['store:', '  postgres:', '    host: 127.0.0.1', `    port: ${port}`, '    database: flexscript', '    user: flexscript', `    password-file: ${passwordFile}`],
  };
}

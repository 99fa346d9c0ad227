/**
 * A remote shared store is reached over TLS that is verified: against a real PostgreSQL server
 * that takes only TLS connections, the right CA and name connect, a wrong CA or a name the
 * certificate does not carry are refused, a client certificate is sent where the server demands
 * one, and secret files other users could read are refused when the config is loaded.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { loadConfig } from '../../src/config/load-config.ts';
import { ConfigError } from '../../src/errors.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { postgresBin, startPostgres, type PostgresServer } from '../support/postgres.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'needs root' : !postgresBin() ? 'PostgreSQL is not installed' : false;

/** Writes a daemon config whose store is `lines` (under `store: postgres:`) and loads it. */
async function load(t: TestContext, lines: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-pg-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'flexscript.yaml');
  writeFileSync(
    file,
    [
      'instance: tls-test',
      'management:',
      '  instances:',
      `    - { name: x, socket: ${join(dir, 'mgmt.sock')} }`,
      'store:',
      '  postgres:',
      ...lines.map((l) => `    ${l}`),
      '',
    ].join('\n'),
  );
  return { file, dir, loaded: () => loadConfig(file) };
}

/** Opens the store through the config file, as the daemon does; returns what the server saw. */
async function open(t: TestContext, lines: string[]): Promise<{ ssl: boolean; clientDn: string | null }> {
  const { loaded } = await load(t, lines);
  const config = (await loaded()).config.store!.postgres!;
  const store = await PostgresStore.open(config);
  try {
    const r = await store.pool.query<{ ssl: boolean; client_dn: string | null }>('SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return { ssl: r.rows[0]!.ssl, clientDn: r.rows[0]!.client_dn };
  } finally {
    await store.close();
  }
}

const base = (pg: PostgresServer, host = pg.host) => [
  `host: ${host}`,
  `port: ${pg.port}`,
  'database: flexscript',
  'user: flexscript',
  `password-file: ${pg.passwordFile}`,
  'pool: 1',
];

describe('PostgreSQL TLS', { skip }, () => {
  test('verify-full with the right CA connects, encrypted; a wrong CA, a wrong name and no TLS are refused', async (t) => {
    const pg = await startPostgres(t, { tls: true });
    const tls = pg.tls!;
    const seen = await open(t, [...base(pg), 'ssl:', `  ca: ${tls.ca}`]);
    assert.equal(seen.ssl, true, 'the connection is encrypted');
    // verify-full is what `ssl` means without a mode
    const explicit = await open(t, [...base(pg), 'ssl:', '  mode: verify-full', `  ca: ${tls.ca}`]);
    assert.equal(explicit.ssl, true);

    await assert.rejects(
      open(t, [...base(pg), 'ssl:', `  ca: ${tls.otherCa}`]),
      /self-signed certificate in certificate chain|unable to verify the first certificate/,
      'a server certificate from another CA is refused',
    );
    await assert.rejects(
      open(t, [...base(pg, tls.unnamedHost), 'ssl:', `  ca: ${tls.ca}`]),
      /does not match certificate's altnames: IP: 127\.0\.0\.2/,
      'verify-full refuses a certificate that does not name the host',
    );
    // verify-ca checks the CA only: the same unnamed address is accepted
    assert.equal((await open(t, [...base(pg, tls.unnamedHost), 'ssl:', '  mode: verify-ca', `  ca: ${tls.ca}`])).ssl, true);
    await assert.rejects(
      open(t, [...base(pg, tls.unnamedHost), 'ssl:', '  mode: verify-ca', `  ca: ${tls.otherCa}`]),
      /self-signed certificate in certificate chain|unable to verify the first certificate/,
    );
    // without ssl the daemon does not fall back to anything: the server refuses it
    await assert.rejects(open(t, base(pg)), /pg_hba\.conf rejects connection .* no encryption/);
  });

  test('a client certificate is sent, and required by a server with cert authentication', async (t) => {
    const pg = await startPostgres(t, { tls: true });
    const tls = pg.tls!;
    const certBase = [`host: ${pg.host}`, `port: ${pg.port}`, 'database: flexcert', `user: ${tls.certUser}`, 'pool: 1'];
    const seen = await open(t, [...certBase, 'ssl:', `  ca: ${tls.ca}`, `  cert: ${tls.clientCert}`, `  key: ${tls.clientKey}`]);
    assert.equal(seen.ssl, true);
    assert.match(seen.clientDn ?? '', /CN=flexcert/, 'the server saw the client certificate');
    await assert.rejects(open(t, [...certBase, 'ssl:', `  ca: ${tls.ca}`]), /requires a valid client certificate/, 'no certificate, no connection');
  });

  test('secret files other users could read are refused at load with FILE:LINE: field: problem', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-pg-secrets-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const password = join(dir, 'password');
    writeFileSync(password, 'secret\n', { mode: 0o644 });
    chmodSync(password, 0o644);
    const lines = ['host: db.example.net', 'database: flexscript', 'user: flexscript', `password-file: ${password}`];
    const { file, loaded } = await load(t, lines);
    const problems = async () => {
      const err = await loaded().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConfigError, `refused at load: ${String(err)}`);
      return err.problems.map((p) => `${p.file}:${p.line}: ${p.field}: ${p.problem}`);
    };
    const lineOf = (key: string) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .findIndex((l) => l.trim().startsWith(`${key}:`)) + 1;
    assert.deepEqual(await problems(), [
      `${file}:${lineOf('password-file')}: store.postgres.password-file: ${password} has mode 0644 (owner uid 0): other users could read the secret; chmod 0640 (owned by root: group may read) it`,
    ]);
    // owned by another user (the daemon's): the group may not read it either
    chmodSync(password, 0o640);
    chownSync(password, 65534, 65534);
    assert.match((await problems())[0]!, /store\.postgres\.password-file: .* has mode 0640 \(owner uid 65534\).*chmod 0600/);
    chmodSync(password, 0o600);
    await loaded();
    // root-owned and group-readable is how root shares it with the daemon's group
    chownSync(password, 0, 0);
    chmodSync(password, 0o640);
    await loaded();

    // the client key follows the same rule; a missing CA file and a key without cert are named
    const key = join(dir, 'client.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', key]);
    chmodSync(key, 0o644);
    const withSsl = await load(t, [...lines, 'ssl:', `  ca: ${join(dir, 'missing-ca.pem')}`, `  key: ${key}`]);
    const err = await withSsl.loaded().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError);
    const text = readFileSync(withSsl.file, 'utf8').split('\n');
    const at = (prefix: string) => `${withSsl.file}:${text.findIndex((l) => l.trim().startsWith(prefix)) + 1}`;
    assert.deepEqual(
      err.problems.map((p) => `${p.file}:${p.line}: ${p.field}: ${p.problem}`).sort(),
      [
        `${at('key:')}: store.postgres.ssl.key: a client certificate needs both cert and key`,
        `${at('ca:')}: store.postgres.ssl.ca: cannot read ${join(dir, 'missing-ca.pem')}: ENOENT`,
        `${at('key:')}: store.postgres.ssl.key: ${key} has mode 0644 (owner uid 0): other users could read the secret; chmod 0640 (owned by root: group may read) it`,
      ].sort(),
    );
  });

  test('ssl is an error, not a silent downgrade: unknown keys and modes are refused', async (t) => {
    const lines = ['database: flexscript', 'user: flexscript'];
    const bad = async (ssl: string[], expected: RegExp) => {
      const { loaded } = await load(t, [...lines, ...ssl]);
      await assert.rejects(loaded(), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => expected.test(`${p.field}: ${p.problem}`)));
    };
    await bad(['ssl:', '  mode: prefer'], /store\.postgres\.ssl\.mode: /);
    await bad(['ssl:', '  verify: true'], /store\.postgres\.ssl\.verify: unknown key/);
    await bad(['ssl:', '  mode: disable', '  ca: /etc/ssl/certs/ca-certificates.crt'], /store\.postgres\.ssl\.ca: not used with mode disable/);
  });
});

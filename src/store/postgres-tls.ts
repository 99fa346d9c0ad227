/**
 * @module postgres-tls
 * How the daemon reaches a PostgreSQL server: TLS (`ssl:`), a client certificate and the
 * password file. The files are read and checked when the config is loaded, so a mistake is a
 * `FILE:LINE: store.postgres.FIELD: problem` line, and again when the store opens.
 *
 * Secret files (the password file and the client key) follow libpq's rule for a client key:
 * nobody but the owner may read them (0600 or less), except that a file owned by root may also be
 * readable by its group (0640 or less), so root can keep it and share it with the daemon's group.
 * Another user who could read either file could log in to the database as the daemon.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { z } from 'zod';

const SSL_MODES = ['verify-full', 'verify-ca', 'require', 'disable'] as const;

const absolute = z.string().startsWith('/', 'must be an absolute path');

/**
 * `ssl:` of `store.postgres`. `ssl: true` is verify-full against Node.js's bundled CA list;
 * `ssl: false` is `mode: disable`.
 */
export const postgresSslSchema = z.preprocess(
  (v) => (v === true ? {} : v === false ? { mode: 'disable' } : v),
  z
    .object({
      /**
       * verify-full (the default): encrypted, the server's certificate signed by `ca` and naming
       * `host`; verify-ca: signed by `ca`, any name; require: encrypted, not verified;
       * disable: no TLS.
       */
      mode: z.enum(SSL_MODES).default('verify-full'),
      /** CA certificates (PEM) the server's certificate must chain to. */
      ca: absolute.optional(),
      /** Client certificate (PEM), for `cert` authentication or `clientcert=verify-full`. */
      cert: absolute.optional(),
      /** The client certificate's private key (PEM, unencrypted; 0600, or 0640 owned by root). */
      key: absolute.optional(),
    })
    .strict(),
);
type PostgresSsl = z.output<typeof postgresSslSchema>;

/** The connection fields this module reads. */
export interface PostgresAccess {
  readonly host: string;
  readonly 'password-file'?: string;
  readonly ssl?: PostgresSsl;
}

/** A problem with one field, its path relative to `store.postgres`. */
export interface AccessProblem {
  readonly path: readonly string[];
  readonly message: string;
}

export interface PostgresSecrets {
  readonly password?: string;
  /** node-postgres's `ssl` option: false, or the TLS options of every connection. */
  readonly ssl: false | ConnectionOptions;
}

class Problem extends Error {}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

function readText(file: string, secret: boolean): string {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    throw new Problem(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new Problem(`${file} is not a regular file`);
  if (secret) {
    const allowed = st.uid === 0 ? 0o640 : 0o600;
    if (st.mode & 0o777 & ~allowed) {
      throw new Problem(
        `${file} has mode ${octal(st.mode)} (owner uid ${st.uid}): other users could read the secret; chmod ${st.uid === 0 ? '0640 (owned by root: group may read)' : '0600'} it`,
      );
    }
  }
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Problem(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certificates(file: string): string {
  const text = readText(file, false);
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  try {
    if (!first) throw new Error('no certificate');
    new X509Certificate(first);
  } catch {
    throw new Problem(`${file} holds no PEM certificate`);
  }
  return text;
}

function privateKey(file: string): string {
  const text = readText(file, true);
  try {
    createPrivateKey(text);
  } catch {
    throw new Problem(`${file} is not an unencrypted PEM private key`);
  }
  return text;
}

/**
 * Reads and checks the password file and the TLS files; returns the options for node-postgres,
 * or every problem found.
 */
export function postgresSecrets(config: PostgresAccess): { secrets?: PostgresSecrets; problems: AccessProblem[] } {
  const problems: AccessProblem[] = [];
  const field = <T>(path: string[], read: () => T): T | undefined => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      problems.push({ path, message: err.message });
      return undefined;
    }
  };
  let password: string | undefined;
  const passwordFile = config['password-file'];
  if (passwordFile !== undefined) {
    password = field(['password-file'], () => {
      const line = readText(passwordFile, true).split('\n')[0]!.replace(/\r$/, '');
      if (line === '') throw new Problem(`${passwordFile}: the first line (the password) is empty`);
      return line;
    });
  }
  const ssl = config.ssl;
  let options: false | ConnectionOptions = false;
  if (ssl && ssl.mode !== 'disable') {
    if (ssl.mode === 'require' && ssl.ca !== undefined)
      problems.push({ path: ['ssl', 'ca'], message: 'mode require does not check the server certificate; use verify-ca or verify-full with ca' });
    if ((ssl.cert === undefined) !== (ssl.key === undefined)) {
      problems.push({ path: ['ssl', ssl.cert === undefined ? 'key' : 'cert'], message: 'a client certificate needs both cert and key' });
    }
    const ca = ssl.ca === undefined ? undefined : field(['ssl', 'ca'], () => certificates(ssl.ca!));
    const cert = ssl.cert === undefined ? undefined : field(['ssl', 'cert'], () => certificates(ssl.cert!));
    const key = ssl.key === undefined ? undefined : field(['ssl', 'key'], () => privateKey(ssl.key!));
    options = {
      // require encrypts without checking who answers; the verify modes refuse an unknown CA
      rejectUnauthorized: ssl.mode !== 'require',
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      // verify-ca: any name on a certificate from the CA; verify-full keeps Node's check of `host`
      ...(ssl.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  } else if (ssl?.mode === 'disable') {
    for (const k of ['ca', 'cert', 'key'] as const) {
      if (ssl[k] !== undefined) problems.push({ path: ['ssl', k], message: 'not used with mode disable' });
    }
  }
  if (problems.length > 0) return { problems };
  return { secrets: { ...(password === undefined ? {} : { password }), ssl: options }, problems };
}

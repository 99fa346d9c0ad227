/**
 * @module check-console
 * `flexscript check`: the `console:` section beyond its schema. The users file exists, parses
 * (a bad line is named by file and line) and is not open to every local user; the audit log's
 * folder exists and the audit log can be written there (as far as the user running the check
 * can tell: it does not know the console's user); the TLS files exist, the key readable by no
 * other user; the OpenID Connect provider's client secret the same, and its discovery document
 * answers (the issuer is reported).
 */
import { accessSync, constants, lstatSync, readFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage, formatProblem } from '../errors.ts';
import type { FieldPath, LoadedConfig } from '../config/load-config.ts';
import { parseConsoleUsers } from '../console/console-users.ts';
import { providerOf } from '../console/oidc-provider.ts';
import type { Findings } from './findings.ts';

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

function stat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Checks the console section; `found` collects what was reached (the provider). */
export async function checkConsole(loaded: LoadedConfig, f: Findings, found: string[]): Promise<void> {
  const section = loaded.config.console;
  if (!section) return;
  const at = (field: FieldPath, problem: string) =>
    loaded.problems([{ code: 'custom', path: [], message: problem, input: undefined }], ['console', ...field]).map(formatProblem);
  const problem = (field: FieldPath, text: string) => f.problems.push(...at(field, text));

  /** A file that holds a secret: it exists, is a file, and no other local user reads it. */
  const secretFile = (field: FieldPath, path: string, what: string, fix: string): boolean => {
    const st = stat(path);
    if (!st) {
      problem(field, `${path} does not exist: ${fix}`);
      return false;
    }
    if (!st.isFile()) {
      problem(field, `${path} is not a regular file${st.isSymbolicLink() ? ' (a symbolic link)' : ''}: give the ${what} itself`);
      return false;
    }
    if (st.mode & 0o006) problem(field, `${path} has mode ${octal(st.mode)}: every local user can read the ${what}; chmod o-rwx ${path}`);
    return true;
  };

  const usersFile = section.auth['users-file'];
  if (usersFile !== undefined) {
    const field: FieldPath = ['auth', 'users-file'];
    if (secretFile(field, usersFile, "console users' password hashes", 'write it with `flexscript passwd NAME --file FILE --groups operator`')) {
      try {
        parseConsoleUsers(readFileSync(usersFile, 'utf8'), usersFile);
      } catch (err) {
        // names the file and the line
        f.problems.push(`${errorMessage(err)}; fix the line (name:hash:role, role viewer or operator)`);
      }
    }
  }

  const audit = section['audit-log'];
  const dir = dirname(audit);
  const dirStat = stat(dir);
  const auditStat = stat(audit);
  if (!dirStat?.isDirectory())
    problem(['audit-log'], `${dir} does not exist: the console cannot start without its audit log; create it (mkdir -m 0750 ${dir})`);
  else if (dirStat.mode & 0o002 && !(dirStat.mode & 0o1000))
    problem(['audit-log'], `${dir} has mode ${octal(dirStat.mode)}: any local user can replace the audit log; chmod o-w ${dir}`);
  else if (auditStat && !auditStat.isFile())
    problem(['audit-log'], `${audit} is not a regular file${auditStat.isSymbolicLink() ? ' (a symbolic link)' : ''}: the audit log must be a file of its own`);
  else if (auditStat && auditStat.mode & 0o002)
    problem(
      ['audit-log'],
      `${audit} has mode ${octal(auditStat.mode)}: any local user can write false entries; chmod o-w ${audit} (the console creates it 0640)`,
    );
  else if (!writable(auditStat ? audit : dir))
    problem(
      ['audit-log'],
      `${auditStat ? audit : dir} is not writable by ${process.getuid?.() === 0 ? 'root' : 'the user running this check'}: the console cannot record logins and disconnects; give the console's user write access`,
    );

  if (section.tls) {
    const cert = stat(section.tls.cert);
    if (!cert?.isFile())
      problem(['tls', 'cert'], `${section.tls.cert} does not exist or is not a file: the console cannot serve HTTPS; give the certificate (PEM)`);
    secretFile(['tls', 'key'], section.tls.key, 'private key', 'the console cannot serve HTTPS; give the private key (PEM)');
  }

  const oidc = section.auth.oidc;
  if (oidc) {
    const secret = oidc['client-secret-file'];
    if (
      secret !== undefined &&
      !secretFile(['auth', 'oidc', 'client-secret-file'], secret, 'client secret', 'write the client secret the provider gave (one line)')
    )
      return;
    try {
      const discovered = await providerOf(oidc).discover();
      found.push(`console: OpenID Connect provider ${discovered.issuer} answers (authorization endpoint ${discovered.authorizationEndpoint ?? 'none'})`);
    } catch (err) {
      problem(
        ['auth', 'oidc', 'issuer'],
        `the provider's discovery document (${oidc.issuer.replace(/\/$/, '')}/.well-known/openid-configuration) cannot be fetched: ${errorMessage(err)}; check the issuer URL and that this host reaches it`,
      );
    }
  }
}

/**
 * @module certificate
 * Throwaway certificates for the lab's servers (PostgreSQL, slapd, Samba): EC keys, a CA made
 * with openssl and the certificates it signs.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** An EC key and certificate in `dir` (`NAME.key`, `NAME.crt`), signed by `ca` or self-signed as a CA. */
export function makeCert(dir: string, name: string, subject: string, ca?: string, ext = ''): void {
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-subj', subject];
  if (!ca) {
    openssl(dir, [
      'req',
      '-x509',
      ...newKey,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return;
  }
  openssl(dir, ['req', ...newKey, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

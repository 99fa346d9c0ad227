/**
 * @module pki
 * A throwaway PKI for the demo, the benchmark and the tests: EC keys (fast), one CA, a server
 * certificate and client certificates with any common name, hostile ones included. One client
 * key serves every client certificate, so a certificate costs one short openssl run.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Issues a client certificate whose common name is exactly `commonName`. */
  issueClient(commonName: string): Promise<{ cert: string; key: string }>;
}

/** `-subj` syntax: a backslash escapes `/` (RDN separator), `+` (multi-valued RDN) and itself. */
function subjectArg(commonName: string): string {
  return `/CN=${commonName.replace(/[\\/+]/g, (c) => `\\${c}`)}`;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { maxBuffer: 1 << 20 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function createPki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  await openssl(['req', '-x509', ...EC, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '3', '-subj', '/CN=flexscript throwaway CA']);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('server.key')]);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('client.key')]);
  const sign = (key: string, subject: string, out: string, usage: 'serverAuth' | 'clientAuth') =>
    openssl([
      'req',
      '-new',
      '-key',
      key,
      '-utf8',
      '-subj',
      subject,
      '-x509',
      '-CA',
      p('ca.crt'),
      '-CAkey',
      p('ca.key'),
      '-days',
      '3',
      '-addext',
      `extendedKeyUsage=${usage}`,
      '-addext',
      'keyUsage=critical,digitalSignature,keyAgreement',
      '-addext',
      'basicConstraints=CA:FALSE',
      '-out',
      out,
    ]);
  await sign(p('server.key'), '/CN=flexscript-server', p('server.crt'), 'serverAuth');
  // OpenVPN reads keys after dropping privileges only on restart; readable keys keep that working
  for (const f of ['ca.crt', 'server.crt', 'server.key', 'client.key']) await chmod(p(f), 0o644);
  let n = 0;
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    async issueClient(commonName) {
      // file names never come from the common name
      const cert = p(`client-${++n}.crt`);
      await sign(p('client.key'), subjectArg(commonName), cert, 'clientAuth');
      return { cert, key: p('client.key') };
    },
  };
}

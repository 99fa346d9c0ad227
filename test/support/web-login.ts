/**
 * What the web-login end-to-end tests share: the client secret file only the daemon reads, the
 * login links a VPN client reports on its management interface (as a VPN GUI reads them), and
 * the plugin's configuration lines.
 */
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connectClientManagement } from '../../src/lab/client-answers.ts';
import { RUN_AS } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { LineSplitter } from '../../src/util/line-splitter.ts';
import { OIDC_CLIENT } from './oidc-provider.ts';

/** The provider's client secret in a file only the daemon's user (nobody) reads. */
export async function clientSecretFile(t: TestContext): Promise<string> {
  const secretDir = await mkdtemp(join(tmpdir(), 'fxs-oidc-'));
  t.after(() => rm(secretDir, { recursive: true, force: true }));
  await chmod(secretDir, 0o755);
  const secretFile = join(secretDir, 'oidc-secret');
  await writeFile(secretFile, `${OIDC_CLIENT.secret}\n`, { mode: 0o600 });
  await chown(secretFile, RUN_AS.uid, RUN_AS.gid);
  return secretFile;
}

/** The login links a client's management interface reports, as a VPN GUI reads them. */
export async function loginLinks(t: TestContext, socket: string): Promise<{ readonly links: string[]; next(n?: number): Promise<string> }> {
  const sock = await connectClientManagement(socket);
  t.after(() => sock.destroy());
  const links: string[] = [];
  const splitter = new LineSplitter(Number.POSITIVE_INFINITY);
  sock.on('data', (chunk: Buffer) =>
    splitter.split(chunk, {
      line: (l) => {
        if (l.startsWith('>HOLD:')) sock.write('hold release\n');
        const m = /^>INFOMSG:WEB_AUTH:[^:]*:(.+)$/.exec(l);
        if (m) links.push(m[1]!);
      },
    }),
  );
  sock.on('error', () => undefined);
  return { links, next: (n = 1) => waitFor(`login link ${n} on ${socket}`, () => links[n - 1], { timeoutMs: 60_000, intervalMs: 100 }) };
}

/** The client config lines of a VPN client that announces web logins and reports their links on `socket`. */
export const webLoginClientLines = (socket: string): string[] => ['setenv IV_SSO webauth', 'push-peer-info', `management ${socket} unix`, 'management-hold'];

/** The web-login plugin's entry (YAML lines) for the test provider. */
export function webLoginPlugin(o: {
  readonly issuer: string;
  readonly secretFile: string;
  readonly listen: { readonly address: string; readonly port: number };
  readonly publicUrl: string;
  readonly timeoutS: number;
}): string[] {
  return [
    '  - use: web-login',
    '    options:',
    `      issuer: ${o.issuer}`,
    `      client-id: ${OIDC_CLIENT.id}`,
    `      client-secret-file: ${o.secretFile}`,
    `      listen: { address: ${o.listen.address}, port: ${o.listen.port} }`,
    `      public-url: ${o.publicUrl}`,
    '      auth-params: { prompt: consent }',
    '      groups-claim: groups',
    '      required-groups: [vpn-users]',
    '      required-claims: { email_verified: true }',
    `      timeout: ${o.timeoutS}s`,
  ];
}

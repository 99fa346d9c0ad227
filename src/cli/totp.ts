/**
 * @module totp
 * `flexscript totp enroll USER --file FILE`: makes a new TOTP secret for a user, writes it to the
 * secrets file of the `totp` plugin, and prints the `otpauth://` URI and its QR code for the
 * user's authenticator app. The file is replaced atomically with its mode and owner kept; a new
 * one is made with mode 0640 (give its group to the daemon's). A user already enrolled keeps the
 * old secret unless `--force` is given. The secret is printed once, here, and nowhere else.
 */
import { promises as fs } from 'node:fs';
import QRCode from 'qrcode';
import { Secret } from 'otpauth';
import { totpFor } from '../plugins/builtin/totp/codes.ts';
import { parseSecretsFile } from '../plugins/builtin/totp/secrets-file.ts';
import { usernameProblem } from '../util/user-lines.ts';
import { replaceFile } from './passwd.ts';

export interface TotpEnrollOptions {
  readonly file: string;
  readonly issuer?: string;
  readonly force?: boolean;
  /** Print no QR code (the URI alone). */
  readonly qr?: boolean;
}

export interface TotpIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

class EnrollError extends Error {}

export async function totpEnrollCommand(user: string, o: TotpEnrollOptions, io: TotpIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    const bad = usernameProblem(user);
    if (bad) throw new EnrollError(`user name ${JSON.stringify(user)} ${bad}`);
    const issuer = o.issuer ?? 'OpenVPN';
    if (issuer.includes(':') || issuer.length > 64) throw new EnrollError('--issuer must be at most 64 characters without ":"');
    let text = '';
    try {
      text = await fs.readFile(o.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new EnrollError(`${o.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // a file the daemon would refuse is not made worse
    const existing = parseSecretsFile(text, o.file);
    if (existing.has(user) && !o.force)
      throw new EnrollError(`${o.file}: ${JSON.stringify(user)} is already enrolled; --force makes a new secret (the old codes stop working)`);
    const secret = new Secret({ size: 20 }).base32;
    const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
    const at = lines.findIndex((l) => !l.startsWith('#') && l.slice(0, l.lastIndexOf(':')) === user);
    if (at >= 0) lines[at] = `${user}:${secret}`;
    else lines.push(`${user}:${secret}`);
    await replaceFile(o.file, `${lines.join('\n')}\n`);
    const uri = totpFor(secret, user, issuer).toString();
    io.stderr.write(`${at >= 0 ? 're-enrolled' : 'enrolled'} ${user} in ${o.file}; scan the code below or enter the URI in an authenticator app:\n`);
    if (o.qr !== false) io.stdout.write(`${(await QRCode.toString(uri, { type: 'utf8', errorCorrectionLevel: 'M' })).trimEnd()}\n`);
    io.stdout.write(`${uri}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`flexscript totp enroll: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

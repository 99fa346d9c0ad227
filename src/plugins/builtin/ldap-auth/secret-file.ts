/**
 * @module secret-file
 * Reads the service account's password from a file, checked as every secret file of the
 * product: a regular file that no other user can read (0600, or 0640 when owned by root, so the
 * daemon's group may read it). The first line is the password.
 */
import { readFileSync, statSync } from 'node:fs';

export function readSecretFile(file: string): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new Error(`${file} is not a regular file`);
  const allowed = st.uid === 0 ? 0o640 : 0o600;
  if (st.mode & 0o777 & ~allowed) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new Error(`${file} has mode ${mode} (owner uid ${st.uid}): other users could read the password; chmod ${st.uid === 0 ? '0640' : '0600'} it`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const line = text.split('\n')[0]!.replace(/\r$/, '');
  if (line === '') throw new Error(`${file}: the first line (the password) is empty`);
  return line;
}

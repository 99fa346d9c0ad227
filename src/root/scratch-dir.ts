/**
 * @module scratch-dir
 * A private directory (root only, mode 0700) for the nft scripts. `nft -f -` opens /dev/stdin,
 * which fails on the socket Node gives a child as stdin, so each transaction is written to a
 * fresh file here and passed as `nft -j -f FILE`. The directory is made with mkdtemp under
 * /run (root-only) when it is safe, else the system temp directory, and removed on close. Its
 * name carries the owner's pid, so a root stage that was killed (SIGKILL leaves no time to clean
 * up) has its directory removed by the next one to start.
 */
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function safeBase(): string {
  try {
    const st = lstatSync('/run');
    if (st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0) return '/run';
  } catch {
    // no /run: fall back
  }
  return tmpdir();
}

/** Removes `PREFIX<pid>-*` directories in base whose process is gone. */
function removeAbandoned(base: string, prefix: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(\d+)-[^/]+$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || alive(Number(pid))) continue;
    const path = join(base, name);
    // only a directory of ours (root's, not a link): never follow what another user put there
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === process.getuid?.()) rmSync(path, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ScratchDir {
  readonly path: string;
  #next = 0;

  constructor(prefix = 'flexscript-root-', base = safeBase()) {
    removeAbandoned(base, prefix);
    // mkdtemp never reuses an existing name, and creates the directory with mode 0700
    this.path = mkdtempSync(join(base, `${prefix}${process.pid}-`));
  }

  /** Writes `content` to a new file (mode 0600), runs `fn` with its path, then deletes it. */
  async withFile<T>(content: string, fn: (file: string) => Promise<T>): Promise<T> {
    this.#next += 1;
    const file = join(this.path, `script-${this.#next}.json`);
    await writeFile(file, content, { mode: 0o600, flag: 'wx' });
    try {
      return await fn(file);
    } finally {
      await unlink(file).catch(() => {});
    }
  }

  close(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

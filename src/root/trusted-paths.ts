/**
 * @module trusted-paths
 * The root stage runs code and reads a config that decide what root does. If anyone but root
 * could change one of those files, or any directory above them, that person could become root.
 * So before loading anything, bin/flexscript-root.js checks every such path: owned by root,
 * not writable by group or others, for the path itself, every parent directory up to `/`,
 * everything below a listed directory, and the same for the real path behind a symlink.
 *
 * It imports only node's own modules, so that the check itself loads nothing it has not yet
 * checked but its own file.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Declared in error-codes.ts (RootErrorCode.UNTRUSTED_PATH); repeated here because this file may
 * import only node's own modules (the two are checked to agree by tests).
 */
export const UNTRUSTED_PATH = 'FXS_ROOT_UNTRUSTED_PATH';

export interface TrustProblem {
  readonly path: string;
  readonly problem: string;
}

/** The root stage refuses to run; every problem names a path and why. */
export class UntrustedPathError extends Error {
  readonly code = UNTRUSTED_PATH;
  readonly problems: readonly TrustProblem[];
  constructor(problems: readonly TrustProblem[]) {
    super(`refusing to run as root: ${problems.map((p) => `${p.path}: ${p.problem}`).join('; ')}`);
    this.name = 'UntrustedPathError';
    this.problems = problems;
  }
}

const MAX_ENTRIES = 50_000;

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let p = dirname(path); ; p = dirname(p)) {
    out.push(p);
    if (p === dirname(p)) return out;
  }
}

/**
 * Every problem found under the given absolute paths (files or directories); empty when all
 * are safe.
 */
export async function findUntrustedPaths(paths: readonly string[]): Promise<TrustProblem[]> {
  const problems: TrustProblem[] = [];
  const seen = new Set<string>();

  const check = async (path: string, walk: boolean): Promise<void> => {
    // a directory checked as a parent may later be listed itself, and then walked
    const key = walk ? `${path}/**` : path;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > MAX_ENTRIES) {
      problems.push({ path, problem: `more than ${MAX_ENTRIES} paths to check` });
      return;
    }
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      problems.push({ path, problem: e.code === 'ENOENT' ? 'does not exist' : `cannot be checked: ${e.message}` });
      return;
    }
    if (st.uid !== 0) problems.push({ path, problem: `owned by uid ${st.uid}, not root` });
    // A symlink's own mode bits mean nothing; its target is checked below. A root-owned sticky
    // directory (/tmp) above the tree is safe: others cannot rename or remove root's entries.
    const stickyAncestor = !walk && st.isDirectory() && st.uid === 0 && (st.mode & 0o1000) !== 0;
    const writable = st.isSymbolicLink() || stickyAncestor ? 0 : st.mode & 0o022;
    if (writable !== 0) {
      const who = [writable & 0o020 ? 'group' : '', writable & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
      problems.push({ path, problem: `writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})` });
    }
    if (st.isSymbolicLink()) {
      try {
        const target = await realpath(path);
        for (const a of ancestors(target)) await check(a, false);
        await check(target, walk);
      } catch (err) {
        problems.push({ path, problem: `symlink cannot be resolved: ${(err as Error).message}` });
      }
    } else if (walk && st.isDirectory()) {
      for (const name of (await readdir(path)).sort()) await check(join(path, name), true);
    }
  };

  for (const path of paths) {
    if (!isAbsolute(path)) {
      problems.push({ path, problem: 'not an absolute path' });
      continue;
    }
    for (const a of ancestors(path)) await check(a, false);
    await check(path, true);
  }
  const unique = new Map(problems.map((p) => [`${p.path}\0${p.problem}`, p]));
  return [...unique.values()];
}

/** Throws UntrustedPathError when any path is not safe to trust as root. */
export async function checkTrustedPaths(paths: readonly string[]): Promise<void> {
  const problems = await findUntrustedPaths(paths);
  if (problems.length > 0) throw new UntrustedPathError(problems);
}

/**
 * Everything the root stage trusts: its config, its code (the launcher and the compiled root
 * stage, which imports nothing from the project outside dist/root), the packages it loads
 * (yaml, zod) and node itself. No TypeScript tooling: the root stage runs only compiled
 * JavaScript.
 */
export function rootStagePaths(configFile: string): string[] {
  const project = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const require = createRequire(import.meta.url);
  const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`));
  return [
    configFile,
    join(project, 'bin', 'flexscript-root.js'),
    join(project, 'package.json'),
    join(project, 'dist', 'root'),
    packageDir('yaml'),
    packageDir('zod'),
    process.execPath,
  ];
}

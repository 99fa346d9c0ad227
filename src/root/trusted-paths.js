// @ts-check
/**
 * @module trusted-paths
 * The root stage runs code and reads a config that decide what root does. If anyone but root
 * could change one of those files, or any directory above them, that person could become root.
 * So before loading anything, bin/flexscript-root.js checks every such path: owned by root,
 * not writable by group or others, for the path itself, every parent directory up to `/`,
 * everything below a listed directory, and the same for the real path behind a symlink.
 *
 * Plain JavaScript on purpose (types in trusted-paths.d.ts): it runs before tsx is loaded, so
 * a TypeScript file, tsx or a package that someone else could have changed is refused before
 * any of it runs as root.
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Same value as RootErrorCode.UNTRUSTED_PATH in protocol.ts (checked by a test). */
export const UNTRUSTED_PATH = 'FXS_ROOT_UNTRUSTED_PATH';

/** @typedef {{ readonly path: string; readonly problem: string }} TrustProblem */

/** The root stage refuses to run; every problem names a path and why. */
export class UntrustedPathError extends Error {
  /** @param {readonly TrustProblem[]} problems */
  constructor(problems) {
    super(`refusing to run as root: ${problems.map((p) => `${p.path}: ${p.problem}`).join('; ')}`);
    this.name = 'UntrustedPathError';
    this.code = UNTRUSTED_PATH;
    this.problems = problems;
  }
}

const MAX_ENTRIES = 50_000;

/** @param {string} path */
function ancestors(path) {
  const out = [];
  for (let p = dirname(path); ; p = dirname(p)) {
    out.push(p);
    if (p === dirname(p)) return out;
  }
}

/**
 * Every problem found under the given absolute paths (files or directories); empty when all
 * are safe.
 * @param {readonly string[]} paths
 * @returns {Promise<TrustProblem[]>}
 */
export async function findUntrustedPaths(paths) {
  /** @type {TrustProblem[]} */
  const problems = [];
  const seen = new Set();

  /** @param {string} path @param {boolean} walk */
  const check = async (path, walk) => {
    // a directory checked as a parent may later be listed itself, and then walked
    const key = walk ? `${path}/**` : path;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > MAX_ENTRIES) {
      problems.push({ path, problem: `more than ${MAX_ENTRIES} paths to check` });
      return;
    }
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      const e = /** @type {NodeJS.ErrnoException} */ (err);
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
        problems.push({ path, problem: `symlink cannot be resolved: ${/** @type {Error} */ (err).message}` });
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

/**
 * Throws UntrustedPathError when any path is not safe to trust as root.
 * @param {readonly string[]} paths
 */
export async function checkTrustedPaths(paths) {
  const problems = await findUntrustedPaths(paths);
  if (problems.length > 0) throw new UntrustedPathError(problems);
}

/**
 * Everything the root stage trusts: its config, its code, the packages it loads, node itself.
 * @param {string} configFile
 * @returns {string[]}
 */
export function rootStagePaths(configFile) {
  const here = dirname(fileURLToPath(import.meta.url));
  const project = resolve(here, '..', '..');
  const require = createRequire(import.meta.url);
  /** @param {string} name */
  const packageDir = (name, from = require) => dirname(from.resolve(`${name}/package.json`));
  const tsx = packageDir('tsx');
  const esbuild = packageDir('esbuild', createRequire(join(tsx, 'package.json')));
  const paths = [
    configFile,
    join(project, 'bin', 'flexscript-root.js'),
    join(project, 'package.json'),
    here,
    tsx,
    esbuild,
    packageDir('yaml'),
    packageDir('zod'),
    process.execPath,
  ];
  try {
    // esbuild's native binary lives in a per-platform package
    paths.push(packageDir(`@esbuild/${process.platform}-${process.arch}`, createRequire(join(esbuild, 'package.json'))));
  } catch {
    // not a separate package on this platform
  }
  return paths;
}

#!/usr/bin/env node
// flexscript-root: the root stage, run as root through sudo (`flexscript-root --config FILE`).
//
// Order matters. First, with nothing loaded but node and the plain-JS check, it refuses to run
// if its config, its code (this file, src/root, tsx, esbuild, yaml, zod) or node could be
// changed by anyone but root. Only then does it load the TypeScript through tsx: with no
// compile cache (root never loads compiled code from a cache directory in /tmp) and no tsconfig
// (one in the caller's working directory could remap imports). Variables that steer tsx or
// esbuild are dropped; sudo resets the environment anyway, this covers a root shell.
import { findUntrustedPaths, rootStagePaths, UntrustedPathError } from '../src/root/trusted-paths.js';

const fatal = (fields, msg, exitCode) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'fatal', pid: process.pid, msg, ...fields })}\n`);
  process.exit(exitCode);
};

process.chdir('/');
const argv = process.argv.slice(2);
if (argv.length !== 2 || argv[0] !== '--config' || !argv[1].startsWith('/')) {
  fatal({ argv }, 'usage: flexscript-root --config /absolute/path/root.yaml', 64);
}
const problems = await findUntrustedPaths(rootStagePaths(argv[1]));
if (problems.length > 0) {
  const err = new UntrustedPathError(problems);
  fatal({ code: err.code, problems }, err.message, 78);
}

for (const key of Object.keys(process.env)) {
  if (key.startsWith('TSX_') || key.startsWith('ESBUILD_')) delete process.env[key];
}
process.env.TSX_DISABLE_CACHE = '1';
// imported only now: tsx reads TSX_DISABLE_CACHE when it loads
const { register } = await import('tsx/esm/api');
register({ tsconfig: false });
const { main } = await import('../src/root/root-main.ts');
process.exit(await main(argv));

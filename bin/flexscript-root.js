#!/usr/bin/env node
// flexscript-root: the root stage, run as root through sudo (`flexscript-root --config FILE`).
//
// It runs only the compiled JavaScript in dist/root (`npm run build`), on plain node: no
// TypeScript loader, no compile cache, nothing read from a temp directory. Order matters: first,
// with nothing loaded but node and the check itself, it refuses to run if its config, its code
// (this file, dist/root), the packages it loads (yaml, zod) or node could be changed by anyone
// but root. Only then does it load the rest of the root stage.
import { fileURLToPath } from 'node:url';

const fatal = (fields, msg, exitCode) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'fatal', pid: process.pid, msg, ...fields })}\n`);
  process.exit(exitCode);
};

process.chdir('/');
const argv = process.argv.slice(2);
if (argv.length !== 2 || argv[0] !== '--config' || !argv[1].startsWith('/')) {
  fatal({ argv }, 'usage: flexscript-root --config /absolute/path/root.yaml', 64);
}
const trustedPaths = new URL('../dist/root/trusted-paths.js', import.meta.url);
let check;
try {
  check = await import(trustedPaths.href);
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !err.message.includes(fileURLToPath(trustedPaths))) throw err;
  fatal({ code: 'FXS_NOT_BUILT' }, `${fileURLToPath(trustedPaths)} is missing: run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}`, 78);
}
const problems = await check.findUntrustedPaths(check.rootStagePaths(argv[1]));
if (problems.length > 0) {
  const err = new check.UntrustedPathError(problems);
  fatal({ code: err.code, problems }, err.message, 78);
}
const { main } = await import('../dist/root/root-main.js');
process.exit(await main(argv));

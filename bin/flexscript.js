#!/usr/bin/env node
// Runs the TypeScript sources through tsx, which also loads operators' .ts plugins:
// no build step for the product or for plugins.
//
// tsx's disk cache is off. It would live in the shared temp directory as `tsx-<uid>`, and tsx
// trusts whatever it finds there: a local user who creates `/tmp/tsx-0` first could have code
// run as root by the next `flexscript check`. Without it nothing is read from or written to a
// place another user can change; every command compiles in memory.
//
// While tsx loads, TMPDIR points into /proc, where nobody can create anything: tsx fixes its
// temp path at load and, outside its own CLI, only uses it to offer a parent process the list
// of loaded files over a socket there, which a local user could otherwise listen on.
for (const key of Object.keys(process.env)) {
  if (key.startsWith('TSX_') || key.startsWith('ESBUILD_')) delete process.env[key];
}
process.env.TSX_DISABLE_CACHE = '1';
const tmpdir = process.env.TMPDIR;
process.env.TMPDIR = '/proc/flexscript-no-tmp';
const { register } = await import('tsx/esm/api');
if (tmpdir === undefined) delete process.env.TMPDIR;
else process.env.TMPDIR = tmpdir;

register({ tsconfig: false });
await import('../src/cli/main.ts');

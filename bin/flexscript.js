#!/usr/bin/env node
// The `flexscript` command: the compiled JavaScript in dist/ (`npm run build`), on plain node.
// No TypeScript loader and no compile cache for the product's own code; only an operator's
// `.ts` plugins are compiled, in memory, when a config names them (src/plugins/typescript-plugins.ts).
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
try {
  await import(main.href);
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !err.message.includes(fileURLToPath(main))) throw err;
  process.stderr.write(
    `flexscript: ${fileURLToPath(main)} is missing (FXS_NOT_BUILT): run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
  );
  process.exit(78);
}

/**
 * @module typescript-plugins
 * Imports an operator's plugin file through tsx, which compiles TypeScript in memory. The
 * product itself runs as compiled JavaScript; tsx (and esbuild) are loaded only here, the first
 * time a config names a plugin file, never for built-ins.
 *
 * tsx's disk cache stays off. It would live in the shared temp directory as `tsx-<uid>`, and tsx
 * trusts whatever it finds there: a local user who creates `/tmp/tsx-0` first could have code
 * run as root by the next `flexscript check`. Without it nothing is read from or written to a
 * place another user can change.
 *
 * While tsx loads and starts its loader thread, TMPDIR points into /proc, where nobody can
 * create anything: tsx fixes its temp path when it loads and, outside its own CLI, only uses it
 * to offer a parent process the list of loaded files over a socket there, which a local user
 * could otherwise listen on.
 */
type TsImport = (specifier: string, options: { parentURL: string; tsconfig: false }) => Promise<unknown>;

const NO_TMP = '/proc/flexscript-no-tmp';

let tsxApi: Promise<{ tsImport: TsImport }> | undefined;

/** Runs fn with TMPDIR pointing where no one can create a file, and puts TMPDIR back. */
function withoutTmpdir<T>(fn: () => T): T {
  const tmpdir = process.env.TMPDIR;
  process.env.TMPDIR = NO_TMP;
  try {
    return fn();
  } finally {
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
  }
}

function loadTsx(): Promise<{ tsImport: TsImport }> {
  tsxApi ??= (async () => {
    // variables that steer tsx or esbuild (a cache directory, a tsconfig) are not the config's
    for (const key of Object.keys(process.env)) {
      if (key.startsWith('TSX_') || key.startsWith('ESBUILD_')) delete process.env[key];
    }
    // tsx reads this when it loads, in this thread and in its loader thread
    process.env.TSX_DISABLE_CACHE = '1';
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = NO_TMP;
    try {
      return (await import('tsx/esm/api')) as { tsImport: TsImport };
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
  })();
  return tsxApi;
}

/**
 * Imports a plugin file afresh (a reload must see the edited file and what it imports, not
 * Node's module cache), compiling TypeScript on the way. A file outside an ES-module package
 * loads as CommonJS, where the default export sits one level deeper: that is the caller's to
 * unwrap.
 */
export async function importPluginFile(path: string): Promise<{ default?: unknown }> {
  const { tsImport } = await loadTsx();
  // no tsconfig: one in the working directory (e.g. /tmp) could remap the plugin's imports
  const options = { parentURL: import.meta.url, tsconfig: false as const };
  // the call that starts tsx's loader thread (synchronously) gives it a copy of the environment
  return (await withoutTmpdir(() => tsImport(path, options))) as { default?: unknown };
}

/**
 * @module check-plugin-types
 * `flexscript check` type-checks the operator's `.ts` plugins against the product's published
 * types: a typo such as `event.commonNam` or `ctx.denyy` loads fine at run time and silently
 * never matches, while the compiler names it. `openvpn-flexscript` resolves to this package's
 * own types (src/index.ts, shipped in the package), so a plugin folder such as
 * /etc/flexscript/plugins needs no node_modules of its own. Only diagnostics in the operator's
 * files are reported; run time is unchanged (plugins still load through tsx, unchecked).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** This package's root: src/cli/ in the sources, dist/cli/ when built. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PUBLIC_TYPES = existsSync(`${PACKAGE_ROOT}dist/index.d.ts`) ? `${PACKAGE_ROOT}dist/index.d.ts` : `${PACKAGE_ROOT}src/index.ts`;
const NODE_TYPES = `${PACKAGE_ROOT}node_modules/@types`;

/** Without Node's type declarations (a production install), what they would have answered is not the plugin's fault. */
const NEEDS_NODE_TYPES = new Set([2580, 2591, 2592, 2593, 2503]);

/** `FILE:LINE:COL: message` for every type error in the given plugin files and the files they import. */
export function typeCheckPlugins(files: readonly string[]): string[] {
  if (files.length === 0) return [];
  const nodeTypes = existsSync(`${NODE_TYPES}/node`);
  // not strict: what is checked is that every name a plugin uses exists with that type (a typo
  // loads and never matches); strict null checks would fail working plugins over style
  const options: ts.CompilerOptions = {
    strict: false,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    esModuleInterop: true,
    noUncheckedIndexedAccess: false,
    paths: { 'openvpn-flexscript': [PUBLIC_TYPES] },
    ...(nodeTypes ? { typeRoots: [NODE_TYPES], types: ['node'] } : { types: [] }),
  };
  const program = ts.createProgram({ rootNames: [...files], options });
  const ours = (f: ts.SourceFile) =>
    !f.fileName.startsWith(`${PACKAGE_ROOT}src/`) &&
    !f.fileName.startsWith(`${PACKAGE_ROOT}dist/`) &&
    !f.fileName.includes('/node_modules/') &&
    !f.isDeclarationFile;
  const out: string[] = [];
  for (const source of program.getSourceFiles().filter(ours)) {
    for (const d of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      if (d.category !== ts.DiagnosticCategory.Error) continue;
      const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      // a module the plugin brings itself, or Node's own without their declarations: loading reports a real absence
      if (d.code === 2307 && !text.includes("'openvpn-flexscript'")) continue;
      if (!nodeTypes && NEEDS_NODE_TYPES.has(d.code)) continue;
      const { line, character } = source.getLineAndCharacterOfPosition(d.start ?? 0);
      out.push(`${source.fileName}:${line + 1}:${character + 1}: ${text} (TS${d.code})`);
    }
  }
  return out;
}

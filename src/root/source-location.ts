/**
 * @module source-location
 * How every message about a place in a file names it: `FILE:LINE: field: problem`, so an
 * operator (and an editor's jump-to-line) reads the daemon's config, the root config, the users
 * file, OpenVPN's config and the systemd units the same way. It lives in src/root because the
 * root stage imports nothing outside src/root; the rest of the product imports it through
 * src/util/source-location.ts. It imports nothing.
 *
 * @example
 * formatProblem({ file: '/etc/flexscript.yaml', line: 12, field: 'plugins.0.use', problem: 'unknown plugin' })
 * // '/etc/flexscript.yaml:12: plugins.0.use: unknown plugin'
 */

/** One problem at a place in a file. */
export interface SourceProblem {
  readonly file: string;
  /** 1-based; 0 or absent when the problem is about the file as a whole. */
  readonly line?: number;
  /** The field or directive at fault, `''` for the top level; absent where a file has no named fields. */
  readonly field?: string;
  readonly problem: string;
}

/** A problem in a structured configuration file (YAML): always a line and a field. */
export interface ConfigProblem extends SourceProblem {
  readonly line: number;
  readonly field: string;
}

/** `FILE:LINE`, or `FILE` when the line is not known. */
export function sourceLocation(file: string, line?: number): string {
  return line !== undefined && line > 0 ? `${file}:${line}` : file;
}

/** `FILE:LINE: field: problem`; `(top level)` for the empty field; without the parts not known. */
export function formatProblem(p: SourceProblem): string {
  const field = p.field === undefined ? '' : `${p.field || '(top level)'}: `;
  return `${sourceLocation(p.file, p.line)}: ${field}${p.problem}`;
}

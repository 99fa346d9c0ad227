/**
 * @module trusted-paths
 * Types of trusted-paths.js (plain JavaScript because it runs before tsx is loaded).
 */

export interface TrustProblem {
  readonly path: string;
  readonly problem: string;
}

export declare const UNTRUSTED_PATH: 'FXS_ROOT_UNTRUSTED_PATH';

/** The root stage refuses to run; every problem names a path and why. */
export declare class UntrustedPathError extends Error {
  readonly code: typeof UNTRUSTED_PATH;
  readonly problems: readonly TrustProblem[];
  constructor(problems: readonly TrustProblem[]);
}

/** Every problem found under the given absolute paths (files or directories); empty when all are safe. */
export declare function findUntrustedPaths(paths: readonly string[]): Promise<TrustProblem[]>;

/** Throws UntrustedPathError when any path is not safe to trust as root. */
export declare function checkTrustedPaths(paths: readonly string[]): Promise<void>;

/** Everything the root stage trusts: its config, its code, the packages it loads, node itself. */
export declare function rootStagePaths(configFile: string): string[];

/**
 * @module sudoers
 * The sudoers drop-in that lets the daemon's user start the root stage, and nothing else: one
 * user, one absolute command, exact arguments (sudo matches arguments literally, and a command
 * listed without arguments would allow any, so there always are some). Every word is checked
 * to need no quoting in sudoers syntax, so a name cannot widen the rule.
 *
 * @example
 * sudoersDropIn({ user: 'nobody', command: rootCommand('/etc/flexscript/root.yaml') })
 * // nobody ALL=(root) NOPASSWD: /opt/flexscript/bin/flexscript-root.js --config /etc/flexscript/root.yaml
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_SETUP_CODES } from './error-codes.ts';

/** The root stage's executable (`#!/usr/bin/env node`; sudo's secure_path finds node). */
export const ROOT_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'flexscript-root.js');
export const DEFAULT_ROOT_CONFIG = '/etc/flexscript/root.yaml';

/** The command line sudo runs as root (without `sudo -n`). */
export function rootCommand(config: string = DEFAULT_ROOT_CONFIG, script: string = ROOT_SCRIPT): string[] {
  return [script, '--config', config];
}

export interface SudoersOptions {
  /** The daemon's user (OpenVPN's `user`, e.g. nobody). */
  readonly user: string;
  /** The exact command: an absolute path, then its arguments. */
  readonly command: readonly string[];
}

export class SudoersError extends Error {
  readonly code = ROOT_SETUP_CODES.SUDOERS_INVALID.code;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SudoersError';
  }
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Words sudoers reads literally: no spaces, no `,:=\` escapes, no wildcards, no `!` or quotes. */
const WORD = /^[A-Za-z0-9_./-]+$/;

/** The text of a drop-in allowing exactly `command` for `user`, as root, without a password. */
export function sudoersDropIn(options: SudoersOptions): string {
  const { user, command } = options;
  if (!USER.test(user)) throw new SudoersError(`${JSON.stringify(user)} is not a plain user name`);
  const [path, ...args] = command;
  if (path === undefined || !isAbsolute(path)) throw new SudoersError('the command must start with an absolute path');
  for (const word of command) {
    if (!WORD.test(word)) throw new SudoersError(`${JSON.stringify(word)} would need quoting in sudoers; use plain paths`);
  }
  const line = [path, ...(args.length > 0 ? args : ['""'])].join(' ');
  return [
    '# flexscript: lets the daemon start its root stage (flexscript-root), with exactly these',
    '# arguments and nothing else. Install in /etc/sudoers.d/ (mode 0440); check with visudo -cf.',
    `${user} ALL=(root) NOPASSWD: ${line}`,
    '',
  ].join('\n');
}

function findVisudo(): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    try {
      accessSync(join(dir, 'visudo'), constants.X_OK);
      return join(dir, 'visudo');
    } catch {
      // next
    }
  }
  throw new SudoersError('visudo is not installed (install the sudo package)');
}

/** Checks a sudoers file with `visudo -cf FILE`; throws with visudo's message when it is invalid. */
export function checkSudoers(file: string): Promise<void> {
  const visudo = findVisudo();
  return new Promise((resolvePromise, reject) => {
    execFile(visudo, ['-cf', file], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (!err) resolvePromise();
      else reject(new SudoersError(`visudo rejects ${file}: ${`${stderr}${stdout}`.trim() || err.message}`, { cause: err }));
    });
  });
}

/**
 * Runs the hook client the way OpenVPN does: /bin/sh (dash here, or bash where /bin/sh is bash),
 * as OpenVPN's unprivileged user (or as root, as OpenVPN runs `up`), with only the environment
 * OpenVPN would pass.
 */
import { spawn } from 'node:child_process';
import { HOOK, RUN_AS } from '../../src/lab/daemon-process.ts';

export interface HookResult {
  code: number | null;
  stderr: string;
}

export interface HookRunOptions {
  /** The shell that runs the hook (default dash, Debian's /bin/sh). */
  readonly shell?: string;
  /** Run as root, as OpenVPN runs `up` before it drops privileges. */
  readonly asRoot?: boolean;
  /**
   * Shell code run first by the process that then becomes the hook (same pid, so `$$` in it is
   * the hook's `$$`); runs as the same user as the hook.
   */
  readonly before?: string;
}

export function runHook(args: string[], env: Record<string, string>, path = '/usr/bin:/bin', o: HookRunOptions = {}): Promise<HookResult> {
  const shell = o.shell ?? '/bin/dash';
  const hook = o.before === undefined ? [shell, HOOK, ...args] : ['/bin/dash', '-c', `${o.before}\nexec "$@"`, 'sh', shell, HOOK, ...args];
  const argv = o.asRoot ? hook : ['/usr/bin/setpriv', '--reuid', RUN_AS.user, '--regid', RUN_AS.group, '--clear-groups', '--', ...hook];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...env, PATH: path },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

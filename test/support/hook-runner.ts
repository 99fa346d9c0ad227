/**
 * Runs the hook client the way OpenVPN does: dash, as OpenVPN's unprivileged user, with only
 * the environment OpenVPN would pass.
 */
import { spawn } from 'node:child_process';
import { HOOK, RUN_AS } from '../../src/lab/daemon-process.ts';

export interface HookResult {
  code: number | null;
  stderr: string;
}

export function runHook(args: string[], env: Record<string, string>, path = '/usr/bin:/bin'): Promise<HookResult> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/setpriv', ['--reuid', RUN_AS.user, '--regid', RUN_AS.group, '--clear-groups', '--', '/bin/dash', HOOK, ...args], {
      env: { ...env, PATH: path },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

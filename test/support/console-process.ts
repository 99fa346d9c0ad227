/**
 * `flexscript console` (the built CLI) as a process of its own, for the browser tests and the
 * load measurement: started with the given arguments, ready once it says where it serves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { FLEXSCRIPT } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';

export interface ConsoleProcess {
  /** Where it serves, without the trailing slash (`http://127.0.0.1:PORT`). */
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGTERM, and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts the console with `args` (`--config FILE`, `--listen ...`); stopped again if it does not come up. */
export async function startConsole(args: readonly string[]): Promise<ConsoleProcess> {
  const child = spawn(process.execPath, [FLEXSCRIPT, 'console', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    const url = await waitFor(
      'the console to serve',
      () => {
        if (child.exitCode !== null) throw new Error(`flexscript console exited: ${output}`);
        return /serving (http\S+?)\/?$/m.exec(output)?.[1];
      },
      { timeoutMs: 30_000 },
    );
    return { url, child, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

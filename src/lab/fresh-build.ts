/**
 * @module fresh-build
 * Tests import the TypeScript sources, but the processes they start (the daemon, the CLI, the
 * root stage) run the compiled dist/. Loaded from the sources, the lab rebuilds dist/ first when
 * a source file is newer than the last build, so a test never runs code older than what it
 * reads. Builds from several test processes at once take turns (a lock directory).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Written by every build (`npm run build` too); its time is when that build started. */
const BUILD_STAMP = join('dist', '.build-stamp');

const LOCK_WAIT_MS = 300_000;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isStale(repo: string): boolean {
  const newest = Math.max(newestSource(join(repo, 'src')), statSync(join(repo, 'tsconfig.json')).mtimeMs, statSync(join(repo, 'tsconfig.build.json')).mtimeMs);
  try {
    return statSync(join(repo, BUILD_STAMP)).mtimeMs < newest;
  } catch {
    return true;
  }
}

function takeLock(lock: string): void {
  const deadline = Date.now() + LOCK_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // a lock older than any build is left over from a killed process
    try {
      if (Date.now() - statSync(lock).mtimeMs > LOCK_WAIT_MS) rmSync(lock, { recursive: true, force: true });
    } catch {
      // released meanwhile
    }
    if (Date.now() > deadline) throw new Error(`${lock}: another build holds it; remove it if no build runs`);
    Atomics.wait(pause, 0, 0, 200);
  }
}

/** Rebuilds dist/ (tsc -p tsconfig.build.json) when it is missing or older than src/. */
export function ensureFreshBuild(repo: string): void {
  if (!isStale(repo)) return;
  mkdirSync(join(repo, '.tmp'), { recursive: true });
  const lock = join(repo, '.tmp', 'build.lock');
  takeLock(lock);
  try {
    if (!isStale(repo)) return;
    const started = new Date();
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json')], { cwd: repo, stdio: 'pipe', encoding: 'utf8' });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`npm run build failed: ${e.stdout ?? ''}${e.stderr ?? e.message}`);
    }
    const stamp = join(repo, BUILD_STAMP);
    writeFileSync(stamp, '');
    utimesSync(stamp, started, started);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

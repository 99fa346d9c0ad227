/**
 * A legacy script that leaves a process in a session of its own (`setsid sleep 30 &`) keeps its
 * output pipes open after it exits, and escapes the kill of its process group. The exec plugin
 * must still end the run when the script exits (or at its time limit), free its concurrency
 * slot, and remove the run's temporary folder with the via-file credentials.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import { parseEvent } from '../../src/events/parse-event.ts';
import type { AnyEvent, EventName } from '../../src/events/event-map.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { createLogger } from '../../src/logger.ts';
import exec from '../../src/plugins/builtin/exec/index.ts';
import type { PluginInstance } from '../../src/plugins/plugin-api.ts';

/** The script's first argument is the credentials file; `hang-*` users stay past the limit. */
const SCRIPT = `#!/bin/sh
d=$(dirname "$0")
printf '%s\\n' "$1" >> "$d/credentials-seen"
setsid sleep 30 &
echo $! >> "$d/escaped"
case $username in
  hang-*) sleep 30 ;;
  deny-*) exit 1 ;;
esac
echo ran >> "$d/ran.$username"
exit 0
`;

function setup(t: TestContext, options: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-exec-escape-'));
  const path = join(dir, 'verify.sh');
  writeFileSync(path, SCRIPT);
  chmodSync(path, 0o755);
  t.after(() => {
    // the escaped sleeps are this test's to stop
    const escaped = existsSync(join(dir, 'escaped')) ? readFileSync(join(dir, 'escaped'), 'utf8').split('\n').filter(Boolean) : [];
    for (const pid of escaped) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const opts = exec.options!(z).parse({ path, events: ['user-pass-verify'], 'tmp-dir': dir, concurrency: 1, ...options });
  const plugin = exec.setup({
    options: opts,
    log,
    instance: 't',
    configDir: dir,
    signal: new AbortController().signal,
    services: { sessions: { list: () => [] }, kill: async () => {} },
  }) as PluginInstance;
  return { dir, plugin };
}

/** One user-pass-verify through the plugin; fails (instead of hanging) after `deadlineMs`. */
async function verify(plugin: PluginInstance, username: string, deadlineMs: number, signal = new AbortController().signal) {
  const result = { denied: undefined as string | undefined, ms: 0 };
  const ctx = { signal, deny: (r: string) => (result.denied = r), config: () => {}, log: undefined, state: new Map() };
  const event: AnyEvent = parseEvent({
    name: 'user-pass-verify',
    instance: 't',
    source: 'management',
    env: { common_name: username, username, password: `pw of ${username}` },
    args: [],
  });
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`the event for ${username} did not finish within ${deadlineMs} ms`)), deadlineMs)),
  );
  try {
    await Promise.race([(plugin['user-pass-verify' as EventName] as (e: AnyEvent, c: unknown) => Promise<void>)(event, ctx), deadline]);
  } finally {
    clearTimeout(timer);
  }
  result.ms = Date.now() - started;
  return result;
}

const tempFolders = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('flexscript-exec-'));
const credentialsSeen = (dir: string) => readFileSync(join(dir, 'credentials-seen'), 'utf8').split('\n').filter(Boolean);

test('a script that exits leaving a setsid grandchild ends the event at its exit, frees the slot and removes the credentials', async (t) => {
  const s = setup(t, { timeout: '10s' });
  const first = await verify(s.plugin, 'alice', 5000);
  assert.equal(first.denied, undefined, 'exit code 0 accepts');
  assert.ok(first.ms < 3000, `ended at the script's exit, took ${first.ms} ms`);
  const [credentials] = credentialsSeen(s.dir);
  assert.match(credentials!, /flexscript-exec-[^/]+\/credentials$/);
  assert.equal(existsSync(credentials!), false, 'the via-file credentials are removed');
  assert.deepEqual(tempFolders(s.dir), [], 'the temporary folder is removed');
  // concurrency 1: the next event gets the slot
  const second = await verify(s.plugin, 'bob', 5000);
  assert.equal(second.denied, undefined);
  assert.ok(existsSync(join(s.dir, 'ran.bob')), 'the next event ran its script');
  assert.equal((await verify(s.plugin, 'deny-carol', 5000)).denied, 'script exited with code 1');
  assert.deepEqual(tempFolders(s.dir), []);
});

test('a script that hangs past its limit with a setsid grandchild is killed in about the limit; the slot and temp folder are freed', async (t) => {
  const s = setup(t, { timeout: '1s' });
  const hung = await verify(s.plugin, 'hang-dave', 6000);
  assert.match(hung.denied ?? '', /longer than 1000 ms and was killed/);
  assert.ok(hung.ms >= 900 && hung.ms < 3000, `ended at the time limit, took ${hung.ms} ms`);
  const [credentials] = credentialsSeen(s.dir);
  assert.equal(existsSync(credentials!), false, 'the via-file credentials are removed');
  assert.deepEqual(tempFolders(s.dir), [], 'the temporary folder is removed');
  const next = await verify(s.plugin, 'erin', 5000);
  assert.equal(next.denied, undefined, 'the next event runs: the slot was freed');
  assert.ok(next.ms < 3000, `took ${next.ms} ms`);
});

test("an event stopped by the pipeline's own time limit frees the slot and the temp folder too", async (t) => {
  const s = setup(t, { timeout: '20s' });
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('plugin time limit')), 500).unref();
  const stopped = await verify(s.plugin, 'hang-frank', 6000, ac.signal);
  assert.match(stopped.denied ?? '', /time limit of the plugin/);
  assert.ok(stopped.ms < 3000, `took ${stopped.ms} ms`);
  await waitFor('temp folder removed', () => tempFolders(s.dir).length === 0, { timeoutMs: 5000 });
  const next = await verify(s.plugin, 'grace', 5000);
  assert.equal(next.denied, undefined);
});

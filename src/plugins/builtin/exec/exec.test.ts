import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import { parseEvent } from '../../../events/parse-event.ts';
import type { AnyEvent, EventName } from '../../../events/event-map.ts';
import { createLogger } from '../../../logger.ts';
import type { PluginInstance } from '../../plugin-api.ts';
import { waitFor } from '../../../lab/wait.ts';
import { checkConfigLine } from '../../../util/config-lines.ts';
import exec from './index.ts';

const HOSTILE = `a;touch /tmp/fxs-exec-pwned $(id) \`id\` 'q" Zoë`;

function setup(t: TestContext, script: string, options: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-exec-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'hook.sh');
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  const logged: Record<string, unknown>[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write: (c, _e, cb) => {
        logged.push(JSON.parse(String(c)));
        cb();
      },
    }),
  );
  const opts = exec.options!(z).parse({
    path,
    events: ['client-connect', 'learn-address', 'user-pass-verify', 'client-disconnect'],
    'tmp-dir': dir,
    ...options,
  });
  const plugin = exec.setup({
    options: opts,
    log,
    instance: 't',
    configDir: dir,
    signal: new AbortController().signal,
    services: { sessions: { list: () => [] }, kill: async () => {} },
  }) as PluginInstance;
  return { dir, plugin, logged, out: join(dir, 'out') };
}

async function call(plugin: PluginInstance, name: EventName, env: Record<string, string>, args: string[] = []) {
  const result = { denied: undefined as string | undefined, config: [] as string[] };
  const ctx = {
    signal: new AbortController().signal,
    deny: (r: string) => (result.denied = r),
    config: (l: string) => result.config.push(checkConfigLine(l)),
    log: undefined,
    state: new Map(),
  };
  const event: AnyEvent = parseEvent({ name, instance: 't', source: 'management', env, args });
  await (plugin[name] as (e: AnyEvent, c: unknown) => Promise<void>)(event, ctx);
  return result;
}

const connectEnv = (cn: string) => ({
  common_name: cn,
  trusted_ip: '192.0.2.7',
  trusted_port: '4000',
  ifconfig_pool_remote_ip: '10.8.0.5',
  client_connect_deferred_file: '/x/deferred',
});

test('client-connect: the env reaches the script byte-exact, the config file is its last argument, its lines become config', async (t) => {
  const s = setup(
    t,
    `export -p > "$(dirname "$0")/out"; printf '%s\\n' "$@" > "$(dirname "$0")/args"; printf 'push "route 10.9.0.0 255.255.0.0"\\n# comment\\n\\nifconfig-push 10.8.0.9 255.255.255.0\\n' > "$1"; echo hello from the script`,
  );
  const r = await call(s.plugin, 'client-connect', connectEnv(HOSTILE));
  assert.equal(r.denied, undefined);
  assert.deepEqual(r.config, ['push "route 10.9.0.0 255.255.0.0"', 'ifconfig-push 10.8.0.9 255.255.255.0']);
  const env = readFileSync(s.out, 'utf8');
  assert.match(env, /export script_type='client-connect'/);
  assert.ok(env.includes(`export common_name='a;touch /tmp/fxs-exec-pwned $(id) \`id\` '"'"'q" Zoë'`), env);
  assert.doesNotMatch(env, /deferred/, 'the daemon keeps deferral to itself');
  const args = readFileSync(join(s.dir, 'args'), 'utf8').trim().split('\n');
  assert.equal(args.length, 1);
  assert.match(args[0]!, /flexscript-exec-.*\/client-config$/);
  assert.ok(env.includes(`export client_connect_config_file='${args[0]}'`));
  assert.equal(existsSync('/tmp/fxs-exec-pwned'), false);
  assert.deepEqual(
    readdirSync(s.dir).filter((f) => f.startsWith('flexscript-exec-')),
    [],
    'temporary files removed',
  );
  assert.ok(s.logged.some((l) => l.msg === 'script output' && l.line === 'hello from the script' && l.stream === 'stdout'));
});

test('exit codes: non-zero denies connect and vetoes learn-address add, not delete; a bad config line denies', async (t) => {
  const s = setup(t, 'case "$common_name$1" in deny*|*add) exit 1 ;; bad*) printf "push \\"x\\"\\0evil\\n" > "$1" ;; esac; exit 0');
  assert.equal((await call(s.plugin, 'client-connect', connectEnv('deny-me'))).denied, 'script exited with code 1');
  assert.equal((await call(s.plugin, 'client-connect', connectEnv('fine'))).denied, undefined);
  assert.equal((await call(s.plugin, 'learn-address', { common_name: 'x' }, ['add', '10.8.0.5', 'x'])).denied, 'script exited with code 1');
  assert.equal((await call(s.plugin, 'learn-address', {}, ['delete', '10.8.0.5'])).denied, undefined);
  await assert.rejects(call(s.plugin, 'client-connect', connectEnv('bad')), /line break or NUL/);
});

test('learn-address gets op, address and common name; user-pass-verify a 0600 file removed after', async (t) => {
  const s = setup(
    t,
    `d=$(dirname "$0"); printf '%s|' "$@" > "$d/args.$script_type"; [ -n "$1" ] && [ -f "$1" ] && { stat -c %a "$1"; cat "$1"; echo "pw=\${password-unset}"; } > "$d/cred"; exit 0`,
  );
  await call(s.plugin, 'learn-address', { common_name: 'carol' }, ['add', '10.8.0.7', 'carol']);
  assert.equal(readFileSync(join(s.dir, 'args.learn-address'), 'utf8'), 'add|10.8.0.7|carol|');
  const r = await call(s.plugin, 'user-pass-verify', { common_name: 'kim', username: 'kim', password: 's3cret pass' });
  assert.equal(r.denied, undefined);
  assert.equal(readFileSync(join(s.dir, 'cred'), 'utf8'), '600\nkim\ns3cret pass\npw=unset\n');
  assert.equal(existsSync(readFileSync(join(s.dir, 'args.user-pass-verify'), 'utf8').slice(0, -1)), false);
});

test('a script over its time limit is killed with its process group and the client denied', async (t) => {
  const s = setup(t, `sleep 30 & echo $! > "$(dirname "$0")/child"; wait`, { timeout: '300ms' });
  const started = Date.now();
  const r = await call(s.plugin, 'client-connect', connectEnv('slow'));
  assert.match(r.denied ?? '', /longer than 300 ms and was killed/);
  assert.ok(Date.now() - started < 5000);
  const child = Number(readFileSync(join(s.dir, 'child'), 'utf8'));
  // gone, or a zombie waiting for its new parent to reap it
  const state = () => (existsSync(`/proc/${child}/stat`) ? readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone');
  await waitFor('background sleep killed', () => state() === 'gone' || state() === 'Z', { timeoutMs: 5000, intervalMs: 20 });
});

test('the concurrency limit queues runs beyond it', async (t) => {
  // each run records how many runs are inside at once via marker files
  const s = setup(t, `d=$(dirname "$0"); touch "$d/in.$$"; ls "$d" | grep -c '^in\\.' >> "$d/peak"; sleep 0.2; rm "$d/in.$$"`, { concurrency: 2 });
  await Promise.all(Array.from({ length: 6 }, (_, n) => call(s.plugin, 'client-disconnect', { common_name: `c${n}`, bytes_received: '1', bytes_sent: '1' })));
  const peaks = readFileSync(join(s.dir, 'peak'), 'utf8').trim().split('\n').map(Number);
  assert.equal(peaks.length, 6);
  assert.ok(Math.max(...peaks) <= 2, `at most 2 at once, saw ${peaks}`);
  assert.equal(Math.max(...peaks), 2);
});

/**
 * The hook's `#!/bin/sh` is dash on Debian, but bash on Fedora, RHEL, Arch and openSUSE, and an
 * operator may run it with bash. Each shell writes `export -p` in its own format (bash: `$'…'`
 * for control and non-ASCII bytes, `declare -x` outside POSIX mode); the daemon must read every
 * value back exactly, hostile ones included.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/wait.ts';
import { REPO, ownedDir, readJsonLines, startDaemon, writeConfig } from '../../src/lab/daemon-process.ts';
import { runHook } from '../support/hook-runner.ts';

const ENV_RECORDER = join(REPO, 'test/fixtures/plugins/env-recorder.ts');

const HOSTILE: Record<string, string> = {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${HOME} is the hostile value under test
  X_dollar: '$(id) ${HOME} $HOME $',
  X_backquote: '`id` `',
  X_squote: "it's '' '",
  X_dquote: 'say "hi" "',
  X_backslash: 'back\\slash \\n \\\\ \\',
  X_utf8: 'josé 雪 🙂 Zoë',
  X_ansi: "$'\\303\\251' $'x'",
  X_mixed: `'"$\`\\ é'\\''"`,
  X_spaces: '  a  b  ',
  X_tab: 'a\tb\x01\x7f',
  X_newline: 'line1\nline2\n#end\nexport Y=1',
  X_empty: '',
  X_equals: 'a=b=c',
  X_end: '#end',
  common_name: "Zoë's `$(touch /tmp/x)`",
};

test('hostile values come back exactly whichever shell runs the hook: dash, bash, and bash as /bin/sh', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-hookshells-'));
  chmodSync(dir, 0o755);
  const work = ownedDir(join(dir, 'work'));
  const runDir = join(work, 'run');
  const records = join(work, 'records.jsonl');
  const config = writeConfig(
    dir,
    [
      'instance: shells',
      'hook:',
      `  dir: ${runDir}`,
      '  group: nogroup',
      'plugins:',
      `  - path: ${ENV_RECORDER}`,
      '    options:',
      `      file: ${records}`,
    ].join('\n'),
  );
  const daemon = await startDaemon(config, join(dir, 'daemon.log'));
  t.after(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  // where /bin/sh is bash, the kernel runs the hook as `sh HOOK`, and bash then runs in POSIX mode
  const bashAsSh = join(dir, 'sh');
  symlinkSync('/bin/bash', bashAsSh);
  const shells = { dash: '/bin/dash', bash: '/bin/bash', 'bash-as-sh': bashAsSh };
  for (const [name, shell] of Object.entries(shells)) {
    const env = { ...HOSTILE, script_type: 'up', dev: 'tun0', X_shell: name };
    const r = await runHook([runDir, 'notify', 'allow', '5', 'tun0', '1500', '0', '10.8.0.1', '255.255.255.0', 'init'], env, '/usr/bin:/bin', { shell });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stderr, '', name);
    const got = await waitFor(`the event from ${name}`, () => readJsonLines(records).find((x) => (x.env as Record<string, string>).X_shell === name), {
      timeoutMs: 15_000,
    });
    const parsed = got.env as Record<string, string>;
    for (const [k, v] of Object.entries(HOSTILE)) assert.equal(parsed[k], v, `${name}: ${k}`);
    assert.equal(parsed.Y, undefined, `${name}: a value cannot add a variable`);
  }
});

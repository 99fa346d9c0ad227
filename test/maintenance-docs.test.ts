/**
 * docs/maintenance.md's examples, run as written: the logrotate stanza rotates the session log
 * of the session-log example plugin (run as the daemon's user) without a signal, keeping owner
 * and mode, and the next record goes into a new file; the systemd units for backup and
 * retention pass `systemd-analyze verify`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { FLEXSCRIPT, REPO, RUN_AS } from '../src/lab/daemon-process.ts';

const DOC = readFileSync(join(REPO, 'docs/maintenance.md'), 'utf8');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** The fenced block that starts with this comment line (`# /etc/...`). */
function block(firstLine: string): string {
  const m = new RegExp(`^\`\`\`\\w*\\n(${firstLine.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\n[^]*?)^\`\`\`$`, 'm').exec(DOC);
  assert.ok(m, `docs/maintenance.md has a block starting ${firstLine}`);
  return m[1]!;
}

test('the logrotate example rotates the session log by renaming: no signal, owner and mode kept, the next record in a new file', {
  skip: process.getuid?.() !== 0 ? 'needs root' : !has('logrotate') ? 'needs logrotate' : false,
}, (t) => {
  const base = mkdtempSync(join(tmpdir(), 'fxs-logrotate-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  chmodSync(base, 0o755);
  // what LogsDirectory= makes: the daemon's folder (here hook mode's user, nobody)
  const logs = join(base, 'log');
  mkdirSync(logs, { mode: 0o755 });
  chownSync(logs, RUN_AS.uid, RUN_AS.gid);
  const file = join(logs, 'sessions.jsonl');
  const stanza = block('# /etc/logrotate.d/flexscript')
    .replaceAll('/var/log/flexscript', logs)
    .replace('su flexscript flexscript', `su ${RUN_AS.user} ${RUN_AS.group}`);
  assert.match(stanza, /^\s+nocreate$/m);
  const conf = join(base, 'flexscript.logrotate');
  writeFileSync(conf, stanza, { mode: 0o644 });

  // the session-log example plugin, as the daemon's user with its unit's UMask=0027
  const record = (commonName: string) => {
    const script = `
      const { default: plugin } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'examples/plugins/session-log.ts')).href)});
      const handlers = plugin.setup({ options: { file: ${JSON.stringify(file)} }, configDir: ${JSON.stringify(logs)} });
      await handlers['client-disconnect']({ commonName: ${JSON.stringify(commonName)}, bytesReceived: 1, bytesSent: 2, duration: 3 }, { state: new Map() });`;
    const r = spawnSync(
      'setpriv',
      [
        '--reuid',
        RUN_AS.user,
        '--regid',
        RUN_AS.group,
        '--clear-groups',
        'sh',
        '-c',
        'umask 027 && exec "$0" "$@"',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: REPO, encoding: 'utf8', env: { ...process.env, TSX_DISABLE_CACHE: '1' } },
    );
    assert.equal(r.status, 0, r.stderr);
  };
  const names = (f: string) =>
    existsSync(f)
      ? readFileSync(f, 'utf8')
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { commonName: string }).commonName)
      : [];
  const rotate = () => {
    const r = spawnSync('logrotate', ['--force', '--state', join(base, 'state'), conf], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'logrotate has nothing to complain about');
  };

  record('alice');
  record('bob');
  rotate();
  assert.equal(existsSync(file), false, 'renamed away; nocreate leaves the new file to the plugin');
  assert.deepEqual(names(`${file}.1`), ['alice', 'bob']);
  const rotated = statSync(`${file}.1`);
  assert.deepEqual([rotated.uid, rotated.mode & 0o777], [RUN_AS.uid, 0o640], "the daemon's file, 0640");

  record('carol');
  assert.deepEqual(names(file), ['carol'], 'the next record starts a new file, without a signal');
  assert.deepEqual(names(`${file}.1`), ['alice', 'bob']);
  assert.deepEqual([statSync(file).uid, statSync(file).mode & 0o777], [RUN_AS.uid, 0o640]);

  rotate();
  // delaycompress: the newest rotated file stays plain, the one before is compressed
  assert.deepEqual(names(`${file}.1`), ['carol']);
  assert.ok(existsSync(`${file}.2.gz`));
  assert.equal(statSync(`${file}.2.gz`).uid, RUN_AS.uid);
});

test('the backup and retention units in the docs pass systemd-analyze verify', { skip: has('systemd-analyze') ? false : 'needs systemd-analyze' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-doc-units-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const units = ['flexscript-backup.service', 'flexscript-backup.timer', 'flexscript-prune.service', 'flexscript-prune.timer'];
  for (const unit of units) {
    // the command as installed: /usr/local/bin/flexscript is the README's symlink
    const text = block(`# /etc/systemd/system/${unit}`).replaceAll('/usr/local/bin/flexscript', FLEXSCRIPT);
    writeFileSync(join(dir, unit), text);
  }
  assert.match(readFileSync(join(dir, 'flexscript-backup.service'), 'utf8'), /\$\$\(date \+%%a\)/, 'systemd escapes: $$ and %%');
  const verify = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.deepEqual(
    `${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.trim()),
    [],
    'no findings',
  );
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkSudoers, ROOT_SCRIPT, rootCommand, SudoersError, sudoersDropIn } from './sudoers.ts';

describe('sudoers drop-in', () => {
  it('allows exactly one command line for one user', () => {
    const text = sudoersDropIn({ user: 'nobody', command: ['/opt/fxs/bin/flexscript-root.js', '--config', '/etc/flexscript/root.yaml'] });
    const rules = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(rules, ['nobody ALL=(root) NOPASSWD: /opt/fxs/bin/flexscript-root.js --config /etc/flexscript/root.yaml']);
  });

  it('forbids arguments when the command has none (sudo would allow any)', () => {
    assert.match(sudoersDropIn({ user: 'nobody', command: ['/usr/local/bin/x'] }), /NOPASSWD: \/usr\/local\/bin\/x ""$/m);
  });

  it('the default command is the absolute root script with --config', () => {
    assert.deepEqual(rootCommand('/etc/flexscript/root.yaml'), [ROOT_SCRIPT, '--config', '/etc/flexscript/root.yaml']);
    assert.ok(ROOT_SCRIPT.startsWith('/') && ROOT_SCRIPT.endsWith('/bin/flexscript-root.js'));
  });

  const refused: [string, string[]][] = [
    ['nobody ALL', ['/bin/x']],
    ['%admin', ['/bin/x']],
    ['nobody', ['bin/x', '--config', '/etc/f']],
    ['nobody', ['/bin/x', '--config', '/etc/f.yaml, /bin/sh']],
    ['nobody', ['/bin/x', '*']],
    ['nobody', ['/bin/x', 'a:b']],
    ['nobody', ['/bin/x', 'a=b']],
    ['nobody', ['/bin/x', 'a\\b']],
    ['nobody', ['/bin/x', 'line\nroot ALL=(ALL) ALL']],
    ['nobody', []],
  ];
  for (const [user, command] of refused) {
    it(`refuses ${JSON.stringify({ user, command })}`, () => {
      assert.throws(() => sudoersDropIn({ user, command }), SudoersError);
    });
  }

  it('visudo accepts what it writes and rejects garbage', { skip: process.getuid?.() === 0 ? false : 'visudo needs root' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fxs-sudoers-'));
    try {
      const good = join(dir, 'good');
      await writeFile(good, sudoersDropIn({ user: 'nobody', command: rootCommand('/etc/flexscript/root.yaml') }), { mode: 0o440 });
      await checkSudoers(good);
      const bad = join(dir, 'bad');
      await writeFile(bad, 'nobody ALL=(root NOPASSWD /bin/x\n', { mode: 0o440 });
      await assert.rejects(checkSudoers(bad), (err: unknown) => err instanceof SudoersError && /visudo rejects/.test(err.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

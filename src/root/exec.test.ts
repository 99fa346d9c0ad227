import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findTool, run } from './exec.ts';
import { RootError, RootErrorCode } from './protocol.ts';

describe('exec', () => {
  it('passes arguments literally: no shell ever sees them', async () => {
    const args = ['$(id)', '`id`', ';', 'reboot', '|', '&&', '*', '"\'', 'a\nb'];
    const result = await run('/bin/echo', args);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `${args.join(' ')}\n`);
  });

  it('gives the tool a minimal environment', async () => {
    const result = await run('/usr/bin/env', []);
    assert.deepEqual(result.stdout.trim().split('\n').sort(), ['LC_ALL=C', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  it('writes stdin and reads stdout', async () => {
    assert.equal((await run('/bin/cat', [], { input: 'hello\n' })).stdout, 'hello\n');
  });

  it('kills a tool that runs past its time limit', async () => {
    const result = await run('/bin/sleep', ['10'], { timeoutMs: 100 });
    assert.equal(result.signal, 'SIGKILL');
  });

  it('names the package when a tool is missing', () => {
    assert.throws(
      () => findTool('conntrack', ['/nonexistent']),
      (e: unknown) => e instanceof RootError && e.code === RootErrorCode.TOOL_MISSING && /install the conntrack package/.test(e.message),
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findTool, limitProcesses, run } from './exec.ts';
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

  it('runs at most the given number of processes at once; the rest wait in order', async () => {
    const limited = limitProcesses(run, 3);
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, limited.running())), 1);
    const outputs = await Promise.all(Array.from({ length: 12 }, (_, i) => limited('/bin/sh', ['-c', `sleep 0.05; echo ${i}`])));
    clearInterval(watch);
    assert.deepEqual(
      outputs.map((o) => o.stdout.trim()),
      Array.from({ length: 12 }, (_, i) => String(i)),
    );
    assert.equal(most, 3);
    assert.equal(limited.running(), 0);
    // a run that cannot start frees its place too
    await assert.rejects(limited('/nonexistent/tool', []));
    assert.equal(limited.running(), 0);
  });

  it('names the package when a tool is missing', () => {
    assert.throws(
      () => findTool('conntrack', ['/nonexistent']),
      (e: unknown) => e instanceof RootError && e.code === RootErrorCode.TOOL_MISSING && /install the conntrack package/.test(e.message),
    );
  });
});

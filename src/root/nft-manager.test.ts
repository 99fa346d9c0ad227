import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import type { RunOptions, RunResult } from './exec.ts';
import { parseAddress } from './ip-address.ts';
import { NftManager } from './nft-manager.ts';
import { type RootError, RootErrorCode } from './protocol.ts';
import { parseRootConfig } from './root-config.ts';
import { silentRootLog } from './root-log.ts';
import { ScratchDir } from './scratch-dir.ts';

const config = parseRootConfig('table: t\nvpn-interfaces: [tun0]\nvpn-networks: [10.8.0.0/24]\ngroups: { staff: {}, ops: {} }\n', 'root.yaml');

/** Stands in for nft: answers `list table` from `listing`, records every script it is given. */
function fakeNft(listing: object, refuse: (script: string) => boolean = () => false) {
  const scripts: { nftables: Record<string, unknown>[] }[] = [];
  const runner = async (_file: string, args: readonly string[], _o?: RunOptions): Promise<RunResult> => {
    if (args[1] === 'list') return { code: 0, signal: null, stdout: JSON.stringify(listing), stderr: '' };
    const text = await readFile(args[2] ?? '', 'utf8');
    scripts.push(JSON.parse(text) as { nftables: Record<string, unknown>[] });
    return refuse(text)
      ? { code: 1, signal: null, stdout: '', stderr: 'Error: Could not process rule: No such file or directory' }
      : { code: 0, signal: null, stdout: '', stderr: '' };
  };
  return { runner, scripts };
}

const set = (name: string, elem?: string[]) => ({
  set: { family: 'inet', table: 't', name, type: name.endsWith('4') ? 'ipv4_addr' : 'ipv6_addr', ...(elem ? { elem } : {}) },
});
const fullListing = {
  nftables: [
    set('g_staff_v4', ['10.8.0.1', '10.8.0.2']),
    set('g_staff_v6'),
    set('g_ops_v4'),
    set('g_ops_v6'),
    { chain: { family: 'inet', table: 't', name: 'forward' } },
  ],
};

describe('NftManager (fake nft)', () => {
  const scratch = new ScratchDir('fxs-nft-test-');
  after(() => scratch.close());

  it('applies a burst of 300 changes in one nft run, from a private file', async () => {
    const nft = fakeNft(fullListing);
    const m = new NftManager({ config, log: silentRootLog, runner: nft.runner, scratch });
    await Promise.all(Array.from({ length: 300 }, (_, i) => m.change('add', 'staff', parseAddress(`10.9.${i >> 8}.${i & 255 || 1}`))));
    assert.equal(m.runs, 1);
    assert.equal(nft.scripts.length, 1);
    assert.equal(nft.scripts[0]?.nftables.length, 1, 'one add command carries all the elements');
  });

  it('retries a refused batch one change at a time', async () => {
    const nft = fakeNft(fullListing, (text) => text.includes('10.66.0.66'));
    const m = new NftManager({ config, log: silentRootLog, runner: nft.runner, scratch });
    const results = await Promise.allSettled(['10.8.0.5', '10.66.0.66', '10.8.0.6'].map((a) => m.change('add', 'staff', parseAddress(a))));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const reason = (results[1] as PromiseRejectedResult).reason as RootError;
    assert.equal(reason.code, RootErrorCode.NFT_FAILED);
    assert.equal(m.runs, 4, 'the batch, then each of its three changes');
  });

  it('reconcile replaces only the sets that differ, and reports what changed', async () => {
    const nft = fakeNft(fullListing);
    const m = new NftManager({ config, log: silentRootLog, runner: nft.runner, scratch });
    const result = await m.reconcile(new Map([['staff', [parseAddress('10.8.0.2'), parseAddress('10.8.0.3')]]]));
    assert.deepEqual(result, { added: 1, removed: 1 });
    assert.deepEqual(nft.scripts[0]?.nftables, [
      { flush: { set: { family: 'inet', table: 't', name: 'g_staff_v4' } } },
      { add: { element: { family: 'inet', table: 't', name: 'g_staff_v4', elem: ['10.8.0.2', '10.8.0.3'] } } },
    ]);
    // already matching: no nft run at all
    const same = fakeNft(fullListing);
    const m2 = new NftManager({ config, log: silentRootLog, runner: same.runner, scratch });
    assert.deepEqual(await m2.reconcile(new Map([['staff', [parseAddress('10.8.0.1'), parseAddress('10.8.0.2')]]])), { added: 0, removed: 0 });
    assert.equal(m2.runs, 0);
  });

  it('reconcile rebuilds a missing table in the same transaction', async () => {
    const nft = fakeNft({ nftables: [] });
    const m = new NftManager({ config, log: silentRootLog, runner: nft.runner, scratch });
    await m.reconcile(new Map([['ops', [parseAddress('fd00::5')]]]));
    const commands = nft.scripts[0]?.nftables ?? [];
    assert.deepEqual(commands[0], { add: { table: { family: 'inet', name: 't' } } });
    assert.deepEqual(commands.at(-1), { add: { element: { family: 'inet', table: 't', name: 'g_ops_v6', elem: ['fd00::5'] } } });
  });

  it('lists elements per group, both families together', async () => {
    const m = new NftManager({ config, log: silentRootLog, runner: fakeNft(fullListing).runner, scratch });
    assert.deepEqual(await m.list(), { staff: ['10.8.0.1', '10.8.0.2'], ops: [] });
  });
});

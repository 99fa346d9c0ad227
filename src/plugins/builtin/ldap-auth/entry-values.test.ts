import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from 'ldapts';
import { allValues, type EntryReader, values } from './entry-values.ts';

const DN = 'CN=alice,OU=Staff,DC=ad,DC=example,DC=test';
const groups = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `CN=g${from + i},OU=Groups,DC=ad,DC=example,DC=test`);

/** Answers as Active Directory does with a MaxValRange of `size`: each request gets one range of `all`. */
function rangingDirectory(all: string[], size: number) {
  const asked: string[] = [];
  const reader: EntryReader = {
    async search(base, options) {
      assert.equal(base, DN);
      assert.equal(options.scope, 'base');
      const attribute = options.attributes[0]!;
      asked.push(attribute);
      const m = /^memberOf;range=(\d+)-\*$/.exec(attribute);
      assert.ok(m, `asked for ${attribute}`);
      return { searchEntries: [rangeEntry(all, Number(m[1]), size)] };
    },
  };
  return { reader, asked };
}

function rangeEntry(all: string[], from: number, size: number): Entry {
  const last = from + size >= all.length;
  const key = `memberOf;range=${from}-${last ? '*' : from + size - 1}`;
  return { dn: DN, [key]: all.slice(from, from + size) };
}

test('an attribute without ranges is read as it is, its name in any case', async () => {
  const entry: Entry = { dn: DN, memberof: ['CN=a', 'CN=b'], single: 'x', buf: Buffer.from('y') };
  assert.deepEqual(values(entry, 'memberOf'), ['CN=a', 'CN=b']);
  assert.deepEqual(values(entry, 'SINGLE'), ['x']);
  assert.deepEqual(values(entry, 'buf'), ['y']);
  assert.deepEqual(values(entry, 'missing'), []);
  const { reader, asked } = rangingDirectory([], 1500);
  assert.deepEqual(await allValues(reader, entry, 'memberOf', 256), ['CN=a', 'CN=b']);
  assert.deepEqual(asked, [], 'nothing more asked');
});

test('memberOf in ranges (AD past MaxValRange): the rest is read range by range until `*`', async () => {
  const all = groups(0, 11);
  const { reader, asked } = rangingDirectory(all, 5);
  const first = rangeEntry(all, 0, 5);
  assert.deepEqual(values(first, 'memberOf'), [], 'the plain name is absent from a ranged entry');
  assert.deepEqual(await allValues(reader, first, 'memberOf', 256), all);
  assert.deepEqual(asked, ['memberOf;range=5-*', 'memberOf;range=10-*']);
});

test('ranged retrieval stops at the bound, and at a range that brings nothing', async () => {
  const all = groups(0, 99);
  const { reader, asked } = rangingDirectory(all, 10);
  assert.deepEqual(await allValues(reader, rangeEntry(all, 0, 10), 'memberOf', 25), all.slice(0, 25));
  assert.deepEqual(asked, ['memberOf;range=10-*', 'memberOf;range=20-*']);

  let calls = 0;
  const empty: EntryReader = {
    async search() {
      calls++;
      return { searchEntries: [{ dn: DN, 'memberOf;range=2-3': [] }] };
    },
  };
  assert.deepEqual(await allValues(empty, { dn: DN, 'memberOf;range=0-1': ['CN=a', 'CN=b'] }, 'memberOf', 256), ['CN=a', 'CN=b']);
  assert.equal(calls, 1, 'an empty range ends the reading');
});

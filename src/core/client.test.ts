import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hookKey, keyString, managementKey, sameKey, type ConnectionKey } from './client.ts';

test('a connection key is a value: equal keys made apart are the same key, and its string is made in one place', () => {
  assert.ok(sameKey(managementKey('office', 7), { via: 'management', instance: 'office', cid: 7 }));
  const c = { instance: 'office', commonName: 'alice', realAddress: '198.51.100.7', realPort: 51234 };
  assert.deepEqual(hookKey(c), { via: 'hook', ...c });
  assert.equal(keyString(hookKey(c)), keyString(hookKey({ ...c })));
});

test('different connections have different key strings, whatever text a client or an operator chose', () => {
  const keys: ConnectionKey[] = [
    managementKey('office', 7),
    managementKey('office', 70),
    managementKey('office/7', 0),
    managementKey('lab', 7),
    { via: 'hook', instance: 'office', commonName: '7' },
    { via: 'hook', instance: 'office', realAddress: '198.51.100.7', realPort: 1, commonName: 'alice' },
    { via: 'hook', instance: 'office', realAddress: '198.51.100.7', realPort: 1, commonName: 'alice/bob' },
    { via: 'hook', instance: 'office', realAddress: '198.51.100.7', realPort: 11, commonName: 'alice' },
    { via: 'hook', instance: 'office', realAddress: '198.51.100.7', commonName: '1/alice' },
    { via: 'hook', instance: 'office/198.51.100.7', realPort: 1, commonName: 'alice' },
    { via: 'hook', instance: 'office', realAddress: '2001:db8::1', realPort: 1, commonName: 'alice' },
  ];
  const strings = keys.map(keyString);
  assert.equal(new Set(strings).size, keys.length, strings.join('\n'));
  for (let i = 0; i < keys.length; i++) for (let j = 0; j < keys.length; j++) assert.equal(sameKey(keys[i]!, keys[j]!), i === j);
});

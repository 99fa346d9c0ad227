import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionString, hookKey, keyString, managementKey, sameKey, type ConnectionKey } from './client.ts';

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

test("a connection without a real address keys alike however the absence came (a record read back from the store, OpenVPN's empty variable), apart from every real address", () => {
  const none = { instance: 'office', commonName: 'alice' };
  // as the store hands back a record whose client had no address: the fields there, undefined
  assert.equal(connectionString({ ...none, realAddress: undefined, realPort: undefined }), connectionString(none));
  // OpenVPN's `untrusted_ip=` is no address (parse-event reads it so): the same connection
  assert.equal(connectionString({ ...none, realAddress: '', realPort: undefined }), connectionString(none));
  assert.notEqual(connectionString({ ...none, realAddress: 'undefined' }), connectionString(none), 'absence is no text');
  assert.notEqual(connectionString({ ...none, realAddress: '198.51.100.7' }), connectionString(none));
  assert.notEqual(connectionString({ ...none, realPort: 0 }), connectionString(none));
  // the hook key of a connection is that connection's string
  assert.equal(keyString(hookKey(none)), `hook\0${connectionString(none)}`);
});

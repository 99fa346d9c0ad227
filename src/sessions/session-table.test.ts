import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionKey } from '../core/client.ts';
import { SessionTable, type Session } from './session-table.ts';

const k = (name: string): ConnectionKey => ({ via: 'hook', instance: 'i', commonName: name });

const info = (commonName: string, vpnAddress?: string, vpnAddress6?: string, instance = 'i') => ({ instance, commonName, vpnAddress, vpnAddress6 });

test('byAddress finds a session by its IPv4 or IPv6 address within its instance, with or without a prefix', () => {
  const t = new SessionTable();
  const a = t.create(k('a'), info('alice', '10.8.0.2', 'fd00::2'));
  const b = t.create(k('b'), info('bob', '10.8.0.2', undefined, 'other'));
  t.add(a);
  t.add(b);
  assert.equal(t.byAddress('i', '10.8.0.2'), a);
  assert.equal(t.byAddress('i', 'fd00::2/128'), a);
  assert.equal(t.byAddress('other', '10.8.0.2'), b);
  assert.equal(t.byAddress('other', 'fd00::2'), undefined);
  assert.equal(t.byAddress('i', '10.8.0.3'), undefined);
});

test('an address set on a registered session moves it in the index; an unregistered one is indexed when added', () => {
  const t = new SessionTable();
  const a = t.create(k('a'), info('alice', '10.8.0.100'));
  t.setAddress(a, '10.8.0.10');
  assert.equal(t.byAddress('i', '10.8.0.10'), undefined, 'not registered yet');
  t.add(a);
  assert.equal(t.byAddress('i', '10.8.0.10'), a);
  assert.equal(t.byAddress('i', '10.8.0.100'), undefined);
  t.setAddress(a, '10.8.0.11');
  t.setAddress(a, 'fd00::11');
  assert.equal(t.byAddress('i', '10.8.0.10'), undefined);
  assert.equal(t.byAddress('i', '10.8.0.11'), a);
  assert.equal(t.byAddress('i', 'fd00::11'), a);
  assert.equal(a.vpnAddress, '10.8.0.11');
});

test('removing or replacing a session takes its addresses out of the index', () => {
  const t = new SessionTable();
  const a = t.create(k('k'), info('alice', '10.8.0.2', 'fd00::2'));
  t.add(a);
  const again = t.create(k('k'), info('alice', '10.8.0.3'));
  t.add(again);
  assert.equal(t.byAddress('i', '10.8.0.2'), undefined);
  assert.equal(t.byAddress('i', 'fd00::2'), undefined);
  assert.equal(t.byAddress('i', '10.8.0.3'), again);
  // the replaced session no longer moves anything in the index
  t.setAddress(a, '10.8.0.3');
  assert.equal(t.byAddress('i', '10.8.0.3'), again);
  t.add(again);
  assert.equal(t.remove(k('k')), again);
  assert.equal(t.byAddress('i', '10.8.0.3'), undefined);
  assert.equal(t.remove(k('k')), undefined);
});

test('two sessions holding one address (a missed disconnect): the latest to take it is found, then the other', () => {
  const t = new SessionTable();
  const stale = t.create(k('old'), info('alice', '10.8.0.2'));
  const fresh = t.create(k('new'), info('bob', '10.8.0.2'));
  t.add(stale);
  t.add(fresh);
  assert.equal(t.byAddress('i', '10.8.0.2'), fresh);
  t.remove(k('new'));
  assert.equal(t.byAddress('i', '10.8.0.2'), stale);
});

test('after any sequence of adds, address changes and removes, the index agrees with a search of every session', () => {
  const t = new SessionTable();
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const address = () => (rand(4) === 0 ? undefined : `10.8.0.${rand(6)}`);
  const address6 = () => (rand(4) === 0 ? undefined : `fd00::${rand(6)}`);
  const made: Session[] = [];
  for (let step = 0; step < 3000; step++) {
    const op = rand(5);
    const key = `k${rand(8)}`;
    if (op === 0) t.add(t.create(k(key), info(key, address(), address6(), `i${rand(2)}`)));
    else if (op === 1) t.remove(k(key));
    else if (op === 2 && made.length > 0) t.setAddress(made[rand(made.length)]!, `10.8.0.${rand(6)}`);
    else if (op === 3 && made.length > 0) t.setAddress(made[rand(made.length)]!, `fd00::${rand(6)}`);
    else made.push(t.create(k(key), info(key, address(), address6(), `i${rand(2)}`)));
    if (op === 4 && rand(2) === 0) t.add(made[made.length - 1]!);
    for (const instance of ['i0', 'i1']) {
      for (let n = 0; n < 6; n++) {
        for (const a of [`10.8.0.${n}`, `fd00::${n}`]) {
          const holders = t.list().filter((s) => s.instance === instance && (s.vpnAddress === a || s.vpnAddress6 === a));
          const found = t.byAddress(instance, a);
          assert.equal(found === undefined, holders.length === 0, `step ${step}: ${instance} ${a}`);
          if (found) assert.ok(holders.includes(found), `step ${step}: ${instance} ${a} found a session that does not hold it`);
        }
      }
    }
  }
});

test('a session keeps a username only when it was verified; rebuilt sessions follow the table policy', () => {
  const t = new SessionTable();
  const who = { instance: 'i', commonName: 'guest-17', username: 'carol' };
  assert.equal(t.create(k('a'), who, 0, false).username, undefined);
  assert.equal(t.create(k('b'), who, 0, true).username, 'carol');
  t.restoredUsernamesVerified = false;
  assert.equal(t.create(k('c'), who).username, undefined, 'a caller that cannot tell gets the policy');
  assert.equal(t.create(k('c'), who).commonName, 'guest-17');
  t.restoredUsernamesVerified = true;
  assert.equal(t.create(k('d'), who).username, 'carol');
});

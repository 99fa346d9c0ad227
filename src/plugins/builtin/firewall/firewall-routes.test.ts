import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { compileGlob } from '../../../util/glob.ts';
import firewall, { membership } from './index.ts';
import routes, { irouteLine } from '../routes/index.ts';

const firewallOptions = (o: unknown) => firewall.options!(z).parse(o);

test('firewall membership: by common name, username or pattern; the default group only for the unnamed', () => {
  const groupsOf = membership(
    firewallOptions({
      groups: { staff: { 'common-names': ['alice'], usernames: ['carol'] }, ops: { patterns: ['*.ops', 'ops-?'] }, guests: {} },
      'default-group': 'guests',
    }),
  );
  assert.deepEqual(groupsOf({ commonName: 'alice' }), ['staff']);
  assert.deepEqual(groupsOf({ commonName: 'x', username: 'carol' }), ['staff']);
  assert.deepEqual(groupsOf({ commonName: 'bob.ops' }), ['ops']);
  assert.deepEqual(groupsOf({ commonName: 'alice', username: 'ops-1' }), ['staff', 'ops']);
  assert.deepEqual(groupsOf({ commonName: 'mallory' }), ['guests']);
});

test('glob patterns treat every character but * and ? literally', () => {
  assert.equal(compileGlob('a.b*')('a.bc'), true);
  assert.equal(compileGlob('a.b*')('axbc'), false);
  assert.equal(compileGlob('(x)|y')('(x)|y'), true);
  assert.equal(compileGlob('(x)|y')('y'), false);
  assert.equal(compileGlob('ops-?')('ops-12'), false);
  assert.equal(compileGlob('*')('line\nbreak'), true);
});

test('firewall options: a default group must be one of the groups, group names are plain', () => {
  assert.throws(() => firewallOptions({ groups: { staff: {} }, 'default-group': 'nobody' }), /not listed under groups/);
  assert.throws(() => firewallOptions({ groups: { 'Bad Name': {} } }), /group name/);
  assert.throws(() => firewallOptions({ groups: { staff: { members: [] } } }), /members/);
});

test('routes: iroute lines for IPv4 and IPv6 networks', () => {
  const opts = routes.options!(z).parse({ clients: { b: ['192.168.10.0/24', '10.0.0.0/8', '0.0.0.0/0', 'fd00:10::/64'] } });
  assert.deepEqual(opts.clients.b!.map(irouteLine), [
    'iroute 192.168.10.0 255.255.255.0',
    'iroute 10.0.0.0 255.0.0.0',
    'iroute 0.0.0.0 0.0.0.0',
    'iroute-ipv6 fd00:10::/64',
  ]);
});

test('routes options: host bits, bad networks and one network behind two clients are refused with their place', () => {
  const issues = (o: unknown) =>
    routes.options!(z)
      .safeParse(o)
      .error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
  assert.match(issues({ clients: { b: ['192.168.10.1/24'] } })[0] ?? '', /^clients\.b\.0: .*host bits are set/);
  assert.match(issues({ clients: { b: ['not a network'] } })[0] ?? '', /^clients\.b\.0: .*not a network/);
  assert.match(issues({ clients: { a: ['10.1.0.0/16'], b: ['10.1.0.0/16'] } })[0] ?? '', /^clients\.b\.0: 10\.1\.0\.0\/16 is already behind a/);
});

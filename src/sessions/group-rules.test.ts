import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../config/load-config.ts';
import { groupRules } from './group-rules.ts';
import { configProblems } from '../../test/support/config-problems.ts';

test("the config's groups: section: free-text names, the members shape of the plugins, defaults filled", () => {
  const { config } = parseConfig(
    ['groups:', '  vpn-admins: { common-names: [alice], usernames: [carol], patterns: ["ops-*"] }', '  Domain Admins: {}'].join('\n'),
    'f.yaml',
  );
  assert.deepEqual(config.groups, {
    'vpn-admins': { 'common-names': ['alice'], usernames: ['carol'], patterns: ['ops-*'] },
    'Domain Admins': { 'common-names': [], usernames: [], patterns: [] },
  });
  assert.deepEqual(parseConfig('instance: x', 'f.yaml').config.groups, {});
});

test('problems in the groups: section name file, line and field', () => {
  assert.deepEqual(configProblems('groups:\n  admins:\n    members: [alice]\n'), ['f.yaml:3: groups.admins.members: unknown key']);
  assert.deepEqual(configProblems('groups:\n  admins:\n    usernames: alice\n'), [
    'f.yaml:3: groups.admins.usernames: Invalid input: expected array, received string',
  ]);
  // a control character in a group name: the field names the key
  assert.deepEqual(configProblems('groups:\n  "a\\tb": {}\n'), ['f.yaml:2: groups.a\tb: Invalid key in record']);
});

test('rules: a common name, a verified username, or a pattern on either, exactly; in the order of the rules', () => {
  const of = groupRules({
    'by-name': { 'common-names': ['alice'], usernames: [], patterns: [] },
    'by-user': { 'common-names': [], usernames: ['carol'], patterns: [] },
    ops: { 'common-names': [], usernames: [], patterns: ['ops-*'] },
  });
  assert.deepEqual(of({ commonName: 'alice' }), ['by-name']);
  assert.deepEqual(of({ commonName: 'ops-1', username: 'carol' }), ['by-user', 'ops']);
  assert.deepEqual(of({ commonName: 'x', username: 'ops-carol' }), ['ops']);
  assert.deepEqual(of({ commonName: 'Alice' }), [], 'exactly');
  assert.deepEqual(of({ commonName: 'carol' }), [], 'a common name is no username');
  assert.deepEqual(of({ commonName: `ops-${'x'.repeat(300)}` }), [], 'a name too long for patterns');
  assert.deepEqual(groupRules()({ commonName: 'alice' }), []);
});

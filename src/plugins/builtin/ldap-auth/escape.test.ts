import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeDnValue, escapeFilterValue, fillTemplate } from './escape.ts';

test('filter values: *, parentheses, backslash and NUL are escaped as hex pairs (RFC 4515); other text, UTF-8 included, is literal', () => {
  assert.equal(escapeFilterValue('*'), '\\2a');
  assert.equal(escapeFilterValue(')(uid=*'), '\\29\\28uid=\\2a');
  assert.equal(escapeFilterValue('a\\b'), 'a\\5cb');
  assert.equal(escapeFilterValue('a\0b'), 'a\\00b');
  assert.equal(escapeFilterValue('Zoë 雪'), 'Zoë 雪');
  // the result has no unescaped metacharacter left, however long
  const long = '*)(|'.repeat(10_000);
  assert.doesNotMatch(escapeFilterValue(long), /[*()]|\\(?![0-9a-f]{2})/);
});

test('DN values: specials after a backslash, NUL as \\00, leading space or # and trailing space escaped (RFC 4514)', () => {
  assert.equal(escapeDnValue('a,b+c;d<e>f"g\\h=i'), 'a\\,b\\+c\\;d\\<e\\>f\\"g\\\\h\\=i');
  assert.equal(escapeDnValue('#admin'), '\\#admin');
  assert.equal(escapeDnValue(' x '), '\\ x\\ ');
  assert.equal(escapeDnValue(' '), '\\ ');
  assert.equal(escapeDnValue('a\\ '), 'a\\\\\\ ', 'a trailing space after an escaped backslash is still escaped');
  assert.equal(escapeDnValue('x#y'), 'x#y', '# only matters first');
  assert.equal(escapeDnValue('a\0b'), 'a\\00b');
  assert.equal(escapeDnValue('uid=admin,dc=x'), 'uid\\=admin\\,dc\\=x', 'a username never adds an RDN');
  assert.equal(escapeDnValue('Zoë 雪'), 'Zoë 雪');
});

test('templates are filled in one pass: a value that looks like a placeholder stays text', () => {
  assert.equal(fillTemplate('(uid={user})', { user: '{user}' }), '(uid={user})');
  assert.equal(fillTemplate('(&(uid={user})(x={other}))', { user: 'a' }), '(&(uid=a)(x={other}))');
  assert.equal(fillTemplate('(uid={user})', { user: '$&$1' }), '(uid=$&$1)', 'replacement patterns are not interpreted');
});

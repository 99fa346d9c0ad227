/**
 * What the demo says when this machine lacks a program it runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { missingForDemo, missingMessage } from './demo-requirements.ts';

test('the demo names each missing program, why it needs it, and one apt-get line for all of them', () => {
  const absent = new Set(['openvpn', 'openssl']);
  const missing = missingForDemo('/usr/bin:/bin', (program) => (absent.has(program) ? undefined : `/usr/bin/${program}`));
  assert.deepEqual(
    missing.map((r) => r.program),
    ['openvpn', 'openssl'],
  );
  assert.equal(
    missingMessage(missing),
    [
      'flexscript demo needs openvpn (OpenVPN 2.6: the server and its clients), openssl (a throwaway certificate authority). On Debian or Ubuntu, as root:',
      '  apt-get install -y openvpn openssl',
      'In the source tree, `bash setup.sh` installs these and builds the product.',
    ].join('\n'),
  );
  assert.deepEqual(
    missingForDemo('', () => '/usr/bin/x'),
    [],
  );
});

test("a program in sbin is found although a user's PATH lacks sbin", (t) => {
  if (!existsSync('/usr/sbin/openvpn')) return t.skip("needs Debian's openvpn in /usr/sbin");
  assert.ok(!missingForDemo('/usr/bin:/bin').some((r) => r.program === 'openvpn'));
  // and a program nowhere is missing
  assert.ok(missingForDemo('/nonexistent', (p) => (p === 'openvpn' ? undefined : '/x')).some((r) => r.program === 'openvpn'));
});

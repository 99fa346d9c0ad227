import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adBindRefusal } from './ad-bind-error.ts';

// the diagnostic messages as Active Directory (and Samba's AD DC) send them
const ad = (code: string) => `80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data ${code}, v1db1`;

test("AD's bind sub-codes name the account's state", () => {
  assert.deepEqual(adBindRefusal(ad('533')), { why: 'disabled', reason: 'account disabled (Active Directory refused the bind: data 533)' });
  assert.equal(adBindRefusal(ad('701'))?.reason, 'account expired (Active Directory refused the bind: data 701)');
  assert.equal(adBindRefusal(ad('775'))?.reason, 'account locked out (Active Directory refused the bind: data 775)');
  assert.equal(adBindRefusal(ad('532'))?.why, 'password-expired');
  assert.equal(adBindRefusal(ad('773'))?.why, 'password-expired');
  assert.equal(adBindRefusal(ad('525'))?.why, 'unknown-user');
  assert.equal(adBindRefusal(ad('530'))?.why, 'disabled');
  assert.equal(adBindRefusal(ad('531'))?.why, 'disabled');
});

test('a plain wrong password, an unknown sub-code and other servers’ messages are no account state', () => {
  assert.equal(adBindRefusal(ad('52e')), undefined);
  assert.equal(adBindRefusal(ad('999')), undefined);
  assert.equal(adBindRefusal('Invalid credentials'), undefined);
  assert.equal(adBindRefusal(''), undefined);
  // a message that only mentions a code elsewhere is not AD's answer
  assert.equal(adBindRefusal('data 533'), undefined);
});

/**
 * @module ad-bind-error
 * Active Directory says why it refused a bind in the diagnostic message of its
 * invalidCredentials answer (`80090308: LdapErr: DSID-…, comment: AcceptSecurityContext error,
 * data 533, v…`): the `data` sub-code tells a wrong password from an account that is disabled,
 * expired, locked out or must change its password. Samba's AD domain controller sends the same.
 * AD gives the account's state only to a bind with the right password (a locked account
 * excepted), so the log says what the operator must fix, and the client still hears only the
 * generic reason.
 */

export interface BindRefusal {
  readonly why: 'unknown-user' | 'disabled' | 'password-expired';
  readonly reason: string;
}

const SUB_CODES: Readonly<Record<string, BindRefusal>> = {
  '525': { why: 'unknown-user', reason: 'unknown user' },
  '530': { why: 'disabled', reason: 'account may not log on at this time (logon hours)' },
  '531': { why: 'disabled', reason: 'account may not log on from this workstation' },
  '532': { why: 'password-expired', reason: 'password expired' },
  '533': { why: 'disabled', reason: 'account disabled' },
  '701': { why: 'disabled', reason: 'account expired' },
  '773': { why: 'password-expired', reason: 'password must be changed first' },
  '775': { why: 'disabled', reason: 'account locked out' },
};

/**
 * What AD's sub-code in a refused bind's message means; undefined for a plain wrong password
 * (`52e`, which AD also answers for a name it does not know) and for any other server's message.
 */
export function adBindRefusal(message: string): BindRefusal | undefined {
  const code = /AcceptSecurityContext error, data ([0-9a-f]{3,8}),/i.exec(message)?.[1]?.toLowerCase();
  const known = code === undefined ? undefined : SUB_CODES[code];
  return known && { why: known.why, reason: `${known.reason} (Active Directory refused the bind: data ${code})` };
}

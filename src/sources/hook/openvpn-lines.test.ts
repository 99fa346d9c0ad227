import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../config/load-config.ts';
import { asksChallenges, hookModeLines, sendsPendingNotices } from './openvpn-lines.ts';

const hookConfig = (events: string[] = []) =>
  parseConfig(['hook:', '  dir: /run/flexscript', ...(events.length ? ['  events:', ...events] : [])].join('\n'), '/etc/flexscript.yaml').config.hook!;

const authLines = (lines: string[]) => lines.filter((l) => /^(script-security|auth-user-pass-verify) /.test(l));

test('user-pass-verify: via-file with script-security 2 by default', () => {
  assert.deepEqual(authLines(hookModeLines(hookConfig(), ['user-pass-verify'], '/usr/lib/flexscript-hook')), [
    'script-security 2',
    'auth-user-pass-verify "/usr/lib/flexscript-hook /run/flexscript defer deny 5" via-file',
  ]);
});

test('user-pass-verify: via-env needs script-security 3', () => {
  const hook = hookConfig(['    user-pass-verify: { method: via-env }']);
  assert.deepEqual(authLines(hookModeLines(hook, ['user-pass-verify'], '/h')), [
    'script-security 3',
    'auth-user-pass-verify "/h /run/flexscript defer deny 5" via-env',
  ]);
  // no plugin checks passwords: no auth hook, and no reason for level 3
  assert.deepEqual(authLines(hookModeLines(hook, ['client-connect'], '/h')), ['script-security 2']);
});

test('method: only for user-pass-verify, only via-file or via-env, reported at its line', () => {
  assert.throws(() => hookConfig(['    user-pass-verify: { method: via-argv }']), /\/etc\/flexscript\.yaml:4: hook\.events\.user-pass-verify\.method: /);
  assert.throws(() => hookConfig(['    client-connect: { method: via-env }']), /\/etc\/flexscript\.yaml:4: hook\.events\.client-connect.*method/);
});

test('learn-address: a line by default; none with learn-address: connect (the daemon reports addresses itself)', () => {
  const learn = (lines: string[]) => lines.filter((l) => l.startsWith('learn-address '));
  assert.deepEqual(learn(hookModeLines(hookConfig(), ['learn-address'], '/h')), ['learn-address "/h /run/flexscript notify allow 5"']);
  const atConnect = parseConfig(['hook:', '  dir: /run/flexscript', '  learn-address: connect'].join('\n'), '/etc/flexscript.yaml').config.hook!;
  const lines = hookModeLines(atConnect, ['learn-address'], '/h');
  assert.deepEqual(learn(lines), []);
  assert.ok(lines.some((l) => l.startsWith('client-connect ')) && lines.some((l) => l.startsWith('client-disconnect ')));
});

test('a plugin that asks clients while they wait: user-pass-verify in ask mode, and the client-crresponse line', () => {
  const lines = (challenges: boolean, events = ['user-pass-verify' as const]) =>
    hookModeLines(hookConfig(), events, '/h', { challenges }).filter((l) => /^(auth-user-pass-verify|client-crresponse) /.test(l));
  assert.deepEqual(lines(true), ['auth-user-pass-verify "/h /run/flexscript ask deny 5" via-file', 'client-crresponse "/h /run/flexscript defer deny 5"']);
  assert.deepEqual(lines(false), ['auth-user-pass-verify "/h /run/flexscript defer deny 5" via-file']);
  // no plugin checks passwords: nothing to ask with
  assert.deepEqual(lines(true, []), []);
});

test('asksChallenges: an enabled totp plugin in mode dynamic', () => {
  const plugins = (...l: string[]) => parseConfig(['hook:', '  dir: /run/flexscript', 'plugins:', ...l].join('\n'), '/etc/flexscript.yaml').config.plugins;
  const totp = (mode: string, enabled = true) => ['  - use: totp', `    enabled: ${enabled}`, '    options:', '      file: /etc/s', `      mode: ${mode}`];
  assert.equal(asksChallenges(plugins(...totp('dynamic'))), true);
  assert.equal(asksChallenges(plugins(...totp('static'))), false);
  assert.equal(asksChallenges(plugins(...totp('dynamic', false))), false);
  assert.equal(asksChallenges(plugins('  - use: firewall')), false);
});

test('web-login: user-pass-verify in ask mode (the login link goes into auth_pending_file), auth-user-pass-optional, no client-crresponse', () => {
  const plugins = parseConfig(['hook:', '  dir: /run/flexscript', 'plugins:', '  - use: web-login', '    options: {}'].join('\n'), '/etc/flexscript.yaml')
    .config.plugins;
  assert.equal(sendsPendingNotices(plugins), true);
  assert.equal(asksChallenges(plugins), false);
  const lines = hookModeLines(hookConfig(), ['user-pass-verify'], '/h', { pendingNotices: true });
  assert.ok(lines.includes('auth-user-pass-verify "/h /run/flexscript ask deny 5" via-file'), lines.join('\n'));
  assert.ok(lines.includes('auth-user-pass-optional'));
  assert.ok(!lines.some((l) => l.startsWith('client-crresponse ')));
});

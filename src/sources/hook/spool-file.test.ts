import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { parseExports, parseSpoolFile } from './spool-file.ts';

/** Runs real dash so the test follows dash's actual quoting, not our idea of it. */
function dashExport(vars: Record<string, string>, args: string[] = []): string {
  const script = 'export FLEXSCRIPT_ARGC=$#; i=0; for a in "$@"; do i=$((i+1)); export "FLEXSCRIPT_ARG$i=$a"; done; { export -p; printf "#end\\n"; }';
  return execFileSync('dash', ['-c', script, 'sh', ...args], { env: vars, encoding: 'utf8' });
}

/** The same with bash: as bash (`declare -x`), and in POSIX mode as where /bin/sh is bash. */
function bashExport(vars: Record<string, string>, posix: boolean): string {
  const script = 'export FLEXSCRIPT_ARGC=0; { export -p; printf "#end\\n"; }';
  return execFileSync('bash', ['--norc', ...(posix ? ['--posix'] : []), '-c', script], { env: vars, encoding: 'utf8' });
}

const hostile = [
  'a;touch /tmp/x',
  '$(id)',
  '`id`',
  `it's "quoted"`,
  "'",
  "''''",
  'back\\slash \\n',
  'line one\nline two',
  '  spaces  ',
  'Zoë 雪 🙂',
  'x'.repeat(64),
  'a=b,c=d',
  '',
];

test('values written by dash export -p come back exactly, hostile ones included', () => {
  const vars: Record<string, string> = {};
  for (const [i, v] of hostile.entries()) vars[`v${i}`] = v;
  const { env, args } = parseSpoolFile(dashExport(vars, ['add', '10.8.0.2', hostile[0]!]));
  for (const [k, v] of Object.entries(vars)) assert.equal(env[k], v, k);
  assert.deepEqual(args, ['add', '10.8.0.2', hostile[0]]);
  assert.equal(env.FLEXSCRIPT_ARGC, undefined, 'hook variables are not part of the env');
});

test('values written by bash export -p come back exactly, in bash and in POSIX mode', () => {
  const vars: Record<string, string> = {};
  for (const [i, v] of [...hostile, 'tab\there', 'bell\x07 del\x7f', "$'\\303'", 'é\n"$`\\'].entries()) vars[`v${i}`] = v;
  for (const posix of [false, true]) {
    const text = bashExport(vars, posix);
    assert.match(text, posix ? /^export v0=/m : /^declare -x v0=/m);
    assert.match(text, /=\$'/, "bash used $'...' quoting");
    const { env } = parseSpoolFile(text);
    for (const [k, v] of Object.entries(vars)) assert.equal(env[k], v, `${posix ? 'posix' : 'bash'}: ${k}`);
  }
});

test("bash's ANSI-C escapes: octal and hex bytes form UTF-8, and the named escapes", () => {
  const v = (text: string) => parseExports(`export a=${text}\n#end\n`).vars.get('a');
  assert.equal(v("$'jos\\303\\251'"), 'josé');
  assert.equal(v("$'\\xc3\\xa9\\u00e9\\U0001F642'"), 'éé🙂');
  assert.equal(v("$'\\a\\b\\e\\E\\f\\n\\r\\t\\v\\\\\\'\\\"\\?'"), '\x07\x08\x1b\x1b\x0c\n\r\t\x0b\\\'"?');
  assert.equal(v("$'\\1\\12\\101x\\cA\\q'"), '\x01\x0aAx\x01\\q');
  assert.equal(v(`"a\\"b\\\\c\\$d\\\`e"'f'$'g'h`), 'a"b\\c$d`efgh');
  assert.throws(() => parseExports("export a=$'\\0'\n#end\n"), /NUL/);
});

test('text a shell would expand is refused, never guessed at', () => {
  for (const bad of ['$HOME', '"$HOME"', '`id`', '"`id`"', 'a;b', '$(id)']) {
    assert.throws(() => parseExports(`export a=${bad}\n#end\n`), /unquoted|unescaped/, bad);
  }
  assert.throws(() => parseExports("typeset -x a='b'\n#end\n"), /not the export -p output of a known shell/);
  assert.throws(() => parseExports("export a=$'x\n"), /unterminated/);
});

test('a file cut short is refused, never half-read', () => {
  const text = dashExport({ common_name: 'alice', trusted_ip: '127.0.0.1' });
  assert.throws(() => parseSpoolFile(text.slice(0, text.indexOf('#end'))), /incomplete/);
  assert.throws(() => parseSpoolFile("export a='unterminated\n"), /unterminated/);
  assert.throws(() => parseSpoolFile('rm -rf /\n#end\n'), /expected "export"/);
});

test('an exported variable without a value reads as empty', () => {
  assert.equal(parseExports("export a\nexport b='x'\n#end\n").vars.get('a'), '');
});

test('via-file credentials replace username and password', () => {
  const { env } = parseSpoolFile(
    dashExport({ script_type: 'user-pass-verify', FLEXSCRIPT_USERNAME: 'bob', FLEXSCRIPT_PASSWORD: "p'w d", username: 'ignored' }),
  );
  assert.equal(env.username, 'bob');
  assert.equal(env.password, "p'w d");
});

test('via-env credentials come through; other events never carry a password', () => {
  const auth = parseSpoolFile(dashExport({ script_type: 'user-pass-verify', username: 'bob', password: 'pw $(x)' })).env;
  assert.deepEqual([auth.username, auth.password], ['bob', 'pw $(x)']);
  const connect = parseSpoolFile(dashExport({ script_type: 'client-connect', username: 'bob', password: 'pw' })).env;
  assert.equal(connect.username, 'bob');
  assert.equal('password' in connect, false);
});

test("client-crresponse: the answer the hook copied comes apart from OpenVPN's env; other events carry none", () => {
  const spool = parseSpoolFile(
    dashExport({ script_type: 'client-crresponse', common_name: 'c', FLEXSCRIPT_CR_RESPONSE: 'MTIzNDU2', FLEXSCRIPT_MODE: 'defer' }),
  );
  assert.equal(spool.crResponse, 'MTIzNDU2');
  assert.equal(spool.mode, 'defer');
  assert.equal(
    Object.keys(spool.env).some((k) => k.startsWith('FLEXSCRIPT_')),
    false,
  );
  assert.equal(parseSpoolFile(dashExport({ script_type: 'user-pass-verify', FLEXSCRIPT_CR_RESPONSE: 'MTIzNDU2' })).crResponse, undefined);
});

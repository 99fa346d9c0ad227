import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../config/load-config.ts';
import { checkConsole } from './check-console.ts';

const HASH = '$2y$10$abcdefghijklmnopqrstuuCZ2Ks1Xk0rPYxYl5Aqi0rF3dsfoWRf.';

function workDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-check-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function check(dir: string, consoleLines: string[]) {
  const file = join(dir, 'flexscript.yaml');
  const text = ['instance: office', 'console:', ...consoleLines.map((l) => `  ${l}`), ''].join('\n');
  writeFileSync(file, text);
  const f = { problems: [] as string[], warnings: [] as string[] };
  const found: string[] = [];
  await checkConsole(parseConfig(text, file), f, found);
  return { ...f, found, file };
}

/** A stand-in discovery document on loopback. */
async function discovery(t: TestContext): Promise<string> {
  let issuer = '';
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/openid-configuration') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return issuer;
}

test('console check: good files pass, the provider is reached and reported', async (t) => {
  const dir = workDir(t);
  writeFileSync(join(dir, 'users'), `# operators\nolga:${HASH}:operator\n`, { mode: 0o640 });
  writeFileSync(join(dir, 'secret'), 'shh\n', { mode: 0o600 });
  mkdirSync(join(dir, 'log'));
  const issuer = await discovery(t);
  const r = await check(dir, [
    'auth:',
    `  users-file: ${join(dir, 'users')}`,
    '  oidc:',
    `    issuer: ${issuer}`,
    '    client-id: console',
    `    client-secret-file: ${join(dir, 'secret')}`,
    '    redirect-url: http://127.0.0.1:8080/login/oidc/callback',
    '    roles: { operator: [ops] }',
    `audit-log: ${join(dir, 'log', 'audit.jsonl')}`,
  ]);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.found, [`console: OpenID Connect provider ${issuer} answers (authorization endpoint ${issuer}/auth)`]);
});

test('console check: a bad users-file line by file and line, modes open to every user, a missing audit folder, TLS files, an unreachable provider', async (t) => {
  const dir = workDir(t);
  const users = join(dir, 'users');
  writeFileSync(users, `olga:${HASH}:operator\nbob:${HASH}:admin\n`);
  chmodSync(users, 0o644);
  const key = join(dir, 'console.key');
  writeFileSync(key, 'KEY');
  chmodSync(key, 0o644);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'shh\n');
  chmodSync(secret, 0o604);
  const r = await check(dir, [
    'tls:',
    `  cert: ${join(dir, 'missing.crt')}`,
    `  key: ${key}`,
    'auth:',
    `  users-file: ${users}`,
    '  oidc:',
    '    issuer: http://127.0.0.1:1',
    '    client-id: console',
    `    client-secret-file: ${secret}`,
    '    redirect-url: https://console.example/login/oidc/callback',
    '    timeout: 2s',
    '    roles: { viewer: [staff] }',
    `audit-log: ${join(dir, 'no-such-dir', 'audit.jsonl')}`,
  ]);
  const expect = (re: RegExp) =>
    assert.ok(
      r.problems.some((p) => re.test(p)),
      `no problem matches ${re}:\n${r.problems.join('\n')}`,
    );
  const cfg = r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  expect(new RegExp(`^${users}:2: the role \\(third field\\) is viewer or operator; fix the line`));
  expect(new RegExp(`^${cfg}:\\d+: console\\.auth\\.users-file: ${users} has mode 0644: every local user can read`));
  expect(new RegExp(`^${cfg}:\\d+: console\\.tls\\.key: ${key} has mode 0644`));
  expect(new RegExp(`^${cfg}:\\d+: console\\.tls\\.cert: .*missing\\.crt does not exist`));
  expect(new RegExp(`^${cfg}:\\d+: console\\.auth\\.oidc\\.client-secret-file: ${secret} has mode 0604`));
  expect(new RegExp(`^${cfg}:\\d+: console\\.audit-log: .*no-such-dir does not exist`));
  expect(
    new RegExp(
      `^${cfg}:\\d+: console\\.auth\\.oidc\\.issuer: the provider's discovery document \\(http://127\\.0\\.0\\.1:1/\\.well-known/openid-configuration\\) cannot be fetched`,
    ),
  );
  assert.equal(r.problems.length, 7, r.problems.join('\n'));
  assert.deepEqual(r.found, []);
});

test('console check: a missing users file, an audit log that is a link or open to every user, a missing client secret', async (t) => {
  const dir = workDir(t);
  const audit = join(dir, 'audit.jsonl');
  symlinkSync('/etc/passwd', audit);
  const r = await check(dir, ['auth:', `  users-file: ${join(dir, 'nope')}`, `audit-log: ${audit}`]);
  assert.match(r.problems.join('\n'), /console\.auth\.users-file: .*nope does not exist: write it with `flexscript passwd/);
  assert.match(r.problems.join('\n'), /console\.audit-log: .*audit\.jsonl is not a regular file \(a symbolic link\)/);
  rmSync(audit);
  writeFileSync(audit, '');
  chmodSync(audit, 0o666);
  const open = await check(dir, [
    'auth:',
    '  oidc:',
    '    issuer: https://idp.example',
    '    client-id: console',
    `    client-secret-file: ${join(dir, 'no-secret')}`,
    '    redirect-url: https://console.example/login/oidc/callback',
    '    roles: { operator: [ops] }',
    `audit-log: ${audit}`,
  ]);
  assert.match(open.problems.join('\n'), /console\.audit-log: .*audit\.jsonl has mode 0666: any local user can write false entries/);
  assert.match(open.problems.join('\n'), /console\.auth\.oidc\.client-secret-file: .*no-secret does not exist/);
  assert.equal(open.problems.length, 2, 'the provider is not asked without its secret');
});

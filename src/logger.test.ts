/**
 * The logger censors secrets by field name. Its censoring is checked against pino's own
 * path-based redaction with the paths it replaces, record by record: the same lines come out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { createLogger } from './logger.ts';

/** The redaction paths the logger's censoring stands for. */
const PATHS = ['password', 'env.password', 'event.password', 'event.env.password', '*.password', 'challengeResponse', '*.challengeResponse'];
const SECRET = 'Leak#Me1';

function linesOf(log: (l: ReturnType<typeof createLogger>) => void): { ours: string[]; pinos: string[] } {
  const ours: string[] = [];
  const pinos: string[] = [];
  log(createLogger('info', { write: (s: string) => void ours.push(s) }));
  const reference = pino(
    { level: 'info', base: { pid: process.pid }, redact: { paths: PATHS, censor: '[redacted]' }, timestamp: false },
    { write: (s: string) => void pinos.push(s) },
  );
  log(reference as unknown as ReturnType<typeof createLogger>);
  const untimed = (l: string) => l.replace(/,"time":"[^"]*"/, '');
  return { ours: ours.map(untimed), pinos: pinos.map(untimed) };
}

test('secrets are censored where pino redacted them, and every line is otherwise the same', () => {
  const event = {
    name: 'user-pass-verify',
    env: { username: 'u', password: SECRET, untrusted_ip: '192.0.2.1' },
    commonName: 'c',
    password: SECRET,
    challengeResponse: { kind: 'static', response: SECRET },
  };
  const inherited = Object.create({ password: SECRET }) as object;
  const error = Object.assign(new Error('failed'), { password: SECRET });
  const { ours, pinos } = linesOf((log) => {
    log.info(event, 'the event itself');
    log.info({ event }, 'under event');
    log.info({ env: event.env, other: { password: SECRET, challengeResponse: SECRET, keep: 1 } }, 'one level down');
    log.info({ raw: { env: { password: SECRET } } }, 'two levels down elsewhere: pino left it');
    log.info({ password: undefined, list: [SECRET], n: 1, s: 'text', nested: { deep: { password: SECRET } } }, 'kept');
    log.info({ inherited }, 'an inherited password');
    log.child({ plugin: 'p', password: SECRET, session: { password: SECRET } }).warn({ event, password: event.password }, 'in a child logger');
    log.info('interpolated %o and %j', { password: SECRET, event }, { a: { challengeResponse: SECRET } });
    log.info({ a: 1 }, 'after a record %o', { password: SECRET });
    log.error(error, 'an error');
    log.warn({ err: error, cause: error }, 'an error under err and under another name');
  });
  assert.equal(ours.length, 11);
  assert.deepEqual(ours, pinos);
  // what pino also left: a password two levels down outside event.env, and none other
  assert.deepEqual(
    ours.filter((l) => l.includes(SECRET)).map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['two levels down elsewhere: pino left it', 'kept'],
  );
});

test("a record without a secret is logged as given, and the caller's objects are never changed", () => {
  const lines: string[] = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(s) });
  const env = { username: 'u', password: SECRET };
  const record = { event: { name: 'x', env }, user: { password: SECRET } };
  log.info(record, 'mixed');
  assert.equal(env.password, SECRET);
  assert.equal(record.user.password, SECRET);
  assert.equal(record.event.env, env);
  log.info({ a: 1, b: { c: 'd' } }, 'plain');
  assert.deepEqual(JSON.parse(lines[1]!).b, { c: 'd' });
  assert.ok(!lines[0]!.includes(SECRET), lines[0]);
});

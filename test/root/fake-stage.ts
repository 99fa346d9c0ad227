/**
 * @module fake-stage
 * A stand-in for flexscript-root in RootClient's unit tests: speaks the same line protocol,
 * records every request line in the file named by argv[2], and misbehaves on cue:
 * group "die" exits at once, "slow" never answers, "bad" is refused, "busy" is refused as busy.
 */
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const record = process.argv[2];
if (!record) throw new Error('usage: fake-stage RECORD_FILE');
process.stderr.write(`${JSON.stringify({ level: 'info', msg: 'ready', pid: process.pid, time: 'x' })}\n`);
process.stderr.write('sudo: plain text on stderr\n');

const reply = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  appendFileSync(record, `${line}\n`);
  const r = JSON.parse(line) as { id: number; action: string; group?: string };
  if (r.group === 'die') process.exit(3);
  if (r.group === 'slow') continue;
  if (r.group === 'busy') reply({ id: r.id, ok: false, error: { code: 'FXS_ROOT_BUSY', message: 'busy: 1024 requests in flight' } });
  else if (r.group === 'bad') reply({ id: r.id, ok: false, error: { code: 'FXS_ROOT_UNKNOWN_GROUP', message: 'group "bad" is not in the root config' } });
  else if (r.action === 'reconcile') reply({ id: r.id, ok: true, result: { sets: { added: 1, removed: 0 }, routes: { added: 0, removed: 0 } } });
  else if (r.action === 'list') reply({ id: r.id, ok: true, result: { sets: { staff: ['10.8.0.2'] }, routes: [] } });
  else reply({ id: r.id, ok: true });
}

/**
 * Client names in `flexscript status` and `flexscript sessions` cannot act on the terminal or
 * disguise themselves: DEL, C1 controls (U+009B is CSI on some terminals), bidi overrides and
 * isolates, marks and zero-width characters come out escaped, in tables and in --json; and wide
 * characters (CJK, emoji) keep the columns aligned.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { statusTable } from '../../src/cli/control.ts';
import { displayWidth } from '../../src/cli/display-width.ts';
import { tableName, terminalJson } from '../../src/cli/text-table.ts';
import type { ControlSession } from '../../src/daemon/control-socket.ts';
import { FLEXSCRIPT, ownedDir } from '../../src/lab/daemon-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { modeLab } from '../e2e/mode-lab.ts';

const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });

/** Every character that must not reach a terminal raw, one name each. */
const HOSTILE = [
  'del\x7fx',
  'csi\u009b31mred',
  'nel\u0085x',
  'rlo\u202egnp.exe',
  'lre\u202ax',
  'lro\u202dx',
  'pdf\u202cx',
  'isolate\u2066x\u2069',
  'fsi\u2068x',
  'rli\u2067x',
  'lrm\u200ex',
  'rlm\u200fx',
  'alm\u061cx',
  'zwsp\u200bx',
  'bom\ufeffx',
  'ls\u2028x',
  'nbsp\u00a0x',
  'tag\u{e0041}x',
];
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u00a0\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\u{e0000}-\u{e007f}]/u;

/**
 * Width as a terminal shows the names used here, worked out by hand for each character (not by
 * the product's own function): CJK and fullwidth 2, the emoji 2, combining acute 0.
 */
const WIDE_NAMES: readonly (readonly [string, number])[] = [
  ['漢字', 4],
  ['ｗｉｄｅ', 8],
  ['smile🙂', 7],
  ['cafe\u0301', 4],
  ['한국어', 6],
  ['mixé漢🙂', 8],
];

/** The display column where `needle` starts in `line`, counting by the hand-made widths above. */
function columnOf(line: string, needle: string): number {
  const at = line.indexOf(needle);
  assert.ok(at >= 0, `${JSON.stringify(needle)} in ${JSON.stringify(line)}`);
  let col = 0;
  for (const ch of line.slice(0, at))
    col += /[\u1100-\u115f\u3000-\u9fff\uac00-\ud7a3\uff01-\uff60]|\p{Emoji_Presentation}/u.test(ch) ? 2 : /\p{Mn}/u.test(ch) ? 0 : 1;
  return col;
}

test('tableName and terminalJson escape every hidden character, and JSON still parses back to the name', () => {
  for (const name of HOSTILE) {
    const shown = tableName(name);
    assert.doesNotMatch(shown, RAW, JSON.stringify(name));
    assert.ok(shown.length > 0);
    const json = terminalJson({ name });
    assert.doesNotMatch(json, RAW, json);
    assert.deepEqual(JSON.parse(json), { name });
  }
  assert.equal(tableName('csi\u009b31m'), 'csi\\x9b31m');
  assert.equal(tableName('rlo\u202egnp.exe'), 'rlo\\u202egnp.exe');
  assert.equal(tableName('del\x7f'), 'del\\x7f');
  assert.equal(tableName('tag\u{e0041}'), 'tag\\u{e0041}');
  assert.equal(tableName(' edge '), '\\x20edge\\x20');
  assert.equal(tableName('back\\slash "q"'), 'back\\\\slash \\"q\\"');
});

test('display width: wide characters two columns, combining marks none', () => {
  for (const [name, width] of WIDE_NAMES) assert.equal(displayWidth(name), width, name);
  assert.equal(displayWidth('\u2764\ufe0f'), 2, 'a heart shown as emoji');
  assert.equal(displayWidth('🇫🇷'), 2, 'a flag is one grapheme');
  assert.equal(displayWidth('plain'), 5);
});

test('status table: hidden characters escaped, columns aligned by display width', () => {
  const row = (commonName: string, i: number): ControlSession => ({
    instance: 'vpn',
    commonName,
    username: `u${i}`,
    vpnAddress: `10.8.0.${i + 2}`,
    realAddress: '198.51.100.7',
    realPort: 5000 + i,
    since: '2026-11-28T10:00:00.000Z',
  });
  const names = [...HOSTILE, ...WIDE_NAMES.map(([n]) => n)];
  const out = statusTable(names.map(row));
  assert.doesNotMatch(out, RAW);
  const lines = out.split('\n');
  const userCol = columnOf(lines[0]!, 'USER');
  const addrCol = columnOf(lines[0]!, 'VPN ADDRESS');
  names.forEach((_, i) => {
    assert.equal(columnOf(lines[i + 1]!, ` u${i} `) + 1, userCol, lines[i + 1]);
    assert.equal(columnOf(lines[i + 1]!, `10.8.0.${i + 2} `), addrCol, lines[i + 1]);
  });
});

test('flexscript sessions: no raw hidden character in the table or --json, columns aligned by display width', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fxs-text-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'a.db');
  const store = new SqliteStore(db);
  const names = [...HOSTILE, ...WIDE_NAMES.map(([n]) => n)];
  const now = Date.now();
  for (const [i, commonName] of names.entries()) {
    await store.openSession({ id: `s${i}`, instance: 'vpn', commonName, username: `u${i}`, vpnAddress: `10.8.0.${i + 2}`, startedAt: now - (i + 1) * 1000 });
  }
  await store.close();
  const config = join(dir, 'flexscript.yaml');
  writeFileSync(config, `store:\n  sqlite: ${db}\n`);

  const table = flexscript('sessions', '--config', config, '--limit', '1000');
  assert.equal(table.status, 0, table.stderr);
  assert.doesNotMatch(table.stdout, RAW);
  const lines = table.stdout.trimEnd().split('\n');
  assert.equal(lines.length, names.length + 1);
  const userCol = columnOf(lines[0]!, 'USER');
  const addrCol = columnOf(lines[0]!, 'VPN ADDRESS');
  names.forEach((_, i) => {
    // newest first: s0 is the first row
    assert.equal(columnOf(lines[i + 1]!, ` u${i} `) + 1, userCol, lines[i + 1]);
    assert.equal(columnOf(lines[i + 1]!, `10.8.0.${i + 2} `), addrCol, lines[i + 1]);
  });

  const json = flexscript('sessions', '--config', config, '--limit', '1000', '--json');
  assert.equal(json.status, 0, json.stderr);
  assert.doesNotMatch(json.stdout, RAW);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { commonName: string }[]).map((r) => r.commonName),
    names,
  );
});

test('through real OpenVPN and the daemon: flexscript status shows certificate names with bidi, C1 and wide characters safely', async (t) => {
  const dir = ownedDir(mkdtempSync(join(tmpdir(), 'fxs-text-status-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const h = await modeLab(t, 'hook', { extraConfig: ['control:', `  socket: ${join(dir, 'control.sock')}`] });
  const names = ['rlo\u202egnp.exe', 'csi\u009b31m', 'del\x7fx', '漢字🙂', 'plain'];
  const clients = await Promise.all(names.map((commonName) => h.lab.startClient({ commonName, port: h.port })));
  await Promise.all(clients.map((c) => c.waitConnected()));
  const rows = await waitFor('every client in status', () => {
    const r = flexscript('status', '--config', h.configPath, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, RAW);
    const parsed = JSON.parse(r.stdout) as ControlSession[];
    return parsed.length === names.length && parsed;
  });
  const seen = rows.map((r) => r.commonName);
  // OpenVPN passes bidi, C1 and wide characters through; whatever it made of DEL, it is shown escaped
  for (const n of ['rlo\u202egnp.exe', 'csi\u009b31m', '漢字🙂', 'plain']) assert.ok(seen.includes(n), `${JSON.stringify(n)} in ${JSON.stringify(seen)}`);
  const table = flexscript('status', '--config', h.configPath);
  assert.equal(table.status, 0, table.stderr);
  assert.doesNotMatch(table.stdout, RAW);
  assert.ok(table.stdout.includes('rlo\\u202egnp.exe') && table.stdout.includes('csi\\x9b31m'), table.stdout);
  const lines = table.stdout.trimEnd().split('\n');
  const userCol = columnOf(lines[0]!, 'USER');
  for (const line of lines.slice(1)) assert.equal(columnOf(line, ' - ') + 1, userCol, line);
});

/**
 * The demo is the first thing a newcomer runs: it must show real events and leave nothing behind,
 * in hook mode and in management mode.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { runDemo } from '../src/cli/demo.ts';

/** The lab names its tun devices after this process (fxsPIDxN); other programs' links come and go meanwhile. */
const OWN_DEVICES = `fxs${process.pid % 10000}x`;

/** Names of the network links on the machine. */
const links = (): Set<string> =>
  new Set(
    execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined),
  );

test('the demo shows connects, a denial and disconnects, then removes everything it made', async () => {
  const lines: string[] = [];
  const linksBefore = links();
  const code = await runDemo({ clients: 3, duration: 1, out: (l) => lines.push(l) });
  const text = lines.join('\n');
  assert.equal(code, 0, text);
  assert.match(text, /connect {5}"alice" from 127\.0\.0\.1:\d+ gets 10\.\d+\.\d+\.\d+; pushed push "route 10\.20\.0\.0 255\.255\.0\.0"/);
  assert.match(text, /connect {5}"ops-bob" .*push "route 10\.99\.0\.0 255\.255\.255\.0"/);
  assert.match(text, /DENIED {6}"lost-laptop-17" by plugin deny-list/);
  assert.match(text, /disconnect {2}"alice" after \d+s, \d+ bytes in, \d+ bytes out/);
  assert.match(text, /2 of 3 clients connected; session-log plugin wrote 2 record\(s\)/);
  // the accounting plugin's SQLite store, shown as flexscript sessions shows it
  assert.match(text, /accounting \(SQLite\): 2 session\(s\), 1 denial\(s\)/);
  assert.match(text, /^\s+demo\s+alice\s+-\s+10\.\S+\s+127\.0\.0\.1:\d+\s.*\sdisconnect$/m);
  assert.match(text, /denied "lost-laptop-17" by deny-list: /);
  const folder = /folder (\S+)/.exec(text)?.[1];
  assert.ok(folder && !existsSync(folder), `the demo folder ${folder} is removed`);
  // links of other programs may come and go meanwhile: only new ones count
  assert.deepEqual(
    [...links()].filter((l) => !linksBefore.has(l) && l.startsWith(OWN_DEVICES)),
    [],
    'no tun device left',
  );
  assert.equal(spawnSync('pgrep', ['-f', folder]).status, 1, 'no process of the demo is left');
});

test('the demo in management mode: the daemon attaches to OpenVPN and shows the same events, then removes everything', async () => {
  const lines: string[] = [];
  const linksBefore = links();
  const code = await runDemo({ clients: 3, duration: 1, mode: 'management', out: (l) => lines.push(l) });
  const text = lines.join('\n');
  assert.equal(code, 0, text);
  assert.match(text, /^openvpn-flexscript demo: .*, management mode$/m);
  assert.match(text, /daemon attached to OpenVPN's management interface \S+mgmt\.sock/);
  // OpenVPN picks the address after the daemon answered: it comes with learn-address
  assert.match(text, /connect {5}"alice" from 127\.0\.0\.1:\d+; pushed push "route 10\.20\.0\.0 255\.255\.0\.0"/);
  assert.match(text, /address {5}add 10\.\d+\.\d+\.\d+ for "alice"/);
  assert.match(text, /DENIED {6}"lost-laptop-17" by plugin deny-list/);
  assert.match(text, /disconnect {2}"alice" after \d+s, \d+ bytes in, \d+ bytes out/);
  assert.match(text, /2 of 3 clients connected; session-log plugin wrote 2 record\(s\)/);
  assert.match(text, /accounting \(SQLite\): 2 session\(s\), 1 denial\(s\)/);
  const folder = /folder (\S+)/.exec(text)?.[1];
  assert.ok(folder && !existsSync(folder), `the demo folder ${folder} is removed`);
  assert.deepEqual(
    [...links()].filter((l) => !linksBefore.has(l) && l.startsWith(OWN_DEVICES)),
    [],
    'no tun device left',
  );
  assert.equal(spawnSync('pgrep', ['-f', folder]).status, 1, 'no process of the demo is left');
});

/**
 * The management command encoder against hostile text: whatever a client puts in a username or
 * common name, every command keeps OpenVPN's limits (arguments of at most 255 bytes, lines under
 * 1024, no control bytes) and reads back, through OpenVPN's own parsing rules, as the same
 * command with the text as one argument.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientAuth, clientDeny, clientKill, clientPendingAuth, password, simpleCommand } from '../../src/openvpn-management/commands.ts';
import { command, EncodedCommand, MAX_ARG_BYTES, MAX_LINE_BYTES, text, word } from '../../src/openvpn-management/encoder.ts';

/**
 * What OpenVPN 2.6 does with the bytes of one line: keep printable bytes and LF only, split at
 * 1024 bytes (the overflow is a new command), then tokenise each command like parse_line.
 * Returns the commands OpenVPN would run, each as its argument list, or an error text.
 */
function openvpnReads(wire: string): (string[] | string)[] {
  const bytes = [...Buffer.from(wire)].filter((b) => b === 0x0a || (b >= 0x20 && b !== 0x7f));
  const commands: Buffer[] = [];
  let current: number[] = [];
  for (const b of bytes) {
    if (b === 0x0a) {
      commands.push(Buffer.from(current));
      current = [];
      continue;
    }
    // the 1024-byte buffer is full: OpenVPN clears it, so what follows is a new command
    if (current.length + 1 >= 1024) current = [];
    current.push(b);
  }
  return commands.map((c) => tokenise(c.toString('utf8')));
}

function tokenise(line: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#' || c === ';') break;
    let token = '';
    if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return 'unterminated quote';
        const d = line[i]!;
        if (d === '\\') {
          const e = line[i + 1];
          if (e !== '\\' && e !== '"' && e !== ' ') return 'bad backslash';
          token += e;
          i += 2;
          continue;
        }
        i++;
        if (d === '"') break;
        token += d;
      }
    } else {
      while (i < line.length && line[i] !== ' ') token += line[i++];
    }
    if (Buffer.byteLength(token) > 255) return 'parameter too long';
    out.push(token);
  }
  return out;
}

const HOSTILE = [
  '',
  'plain',
  '"',
  '\\',
  '\\"',
  '"\\"\\\\""',
  'x" "signal SIGTERM',
  'a\nsignal SIGTERM',
  'a\r\nsignal SIGTERM\r\n',
  'a\0b',
  'E\u0001ND',
  'tab\there',
  'del\u007fhere',
  'c1\u0085\u009bhere',
  '; echo on',
  '# comment',
  `${' '.repeat(600)}signal SIGTERM ;`,
  `inj${'A'.repeat(480)}${' '.repeat(600)}signal SIGTERM ;`,
  `${'A'.repeat(1100)}${' '.repeat(600)}client-auth-nt 0 1`,
  'x'.repeat(4096),
  '\\'.repeat(4096),
  '"'.repeat(4096),
  'Zoë 雪 😀'.repeat(400),
  `${'a'.repeat(251)}é`,
  `${'a'.repeat(251)}\\`,
  `${'a'.repeat(250)}😀`,
  `${'a'.repeat(252)}"`,
  '\ud800 lone surrogate \udc00',
];

/** Control characters become `_`, lone surrogates U+FFFD; then the text may only be cut at its end. */
const cleaned = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd').replace(/[\u0000-\u001f\u007f-\u009f]/g, '_');

test('every command with hostile text is one command that OpenVPN reads back with the text as one argument, cut at most', () => {
  for (const s of HOSTILE) {
    for (const cmd of [clientDeny(12, 3, s, s), clientDeny(4294967295, 4294967295, s), clientKill(5, s)]) {
      const lines = cmd.text.split('\n');
      assert.equal(lines.pop(), '', 'ends in LF');
      assert.equal(lines.length, 1, `one line for ${JSON.stringify(s.slice(0, 30))}`);
      assert.ok(Buffer.byteLength(cmd.text) <= MAX_LINE_BYTES, 'the line fits OpenVPN’s buffer');
      assert.doesNotMatch(cmd.text.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/, 'no control byte');
      const read = openvpnReads(cmd.text);
      assert.equal(read.length, 1, `OpenVPN runs one command for ${JSON.stringify(s.slice(0, 30))}`);
      const args = read[0]!;
      assert.ok(Array.isArray(args), `OpenVPN parses it (${String(args)}) for ${JSON.stringify(s.slice(0, 30))}`);
      const verb = args[0]!;
      assert.ok(['client-deny', 'client-kill'].includes(verb));
      const texts = verb === 'client-deny' ? args.slice(3) : args.slice(2);
      assert.ok(texts.length >= 1);
      for (const arg of texts) {
        assert.ok(cleaned(s).startsWith(arg), `the argument is the text, cut at most: ${JSON.stringify(arg.slice(0, 40))}`);
        assert.ok(Buffer.byteLength(arg) <= MAX_ARG_BYTES - 2);
        // the cut is as late as the limit allows: nothing that would still fit was dropped
        if (arg.length < cleaned(s).length) {
          const next = [...cleaned(s).slice(arg.length)][0]!;
          const escaped = next === '\\' || next === '"' ? 2 : Buffer.byteLength(next);
          const quoted = Buffer.byteLength(arg) + (arg.match(/[\\"]/g)?.length ?? 0) + 2;
          assert.ok(quoted + escaped > MAX_ARG_BYTES, 'cut only where the next character does not fit');
        }
      }
    }
  }
});

test('an argument is cut on a UTF-8 character boundary and never inside an escape', () => {
  // 253 bytes of room inside the quotes
  const emoji = text(`${'a'.repeat(250)}😀`).value;
  assert.equal(emoji, `"${'a'.repeat(250)}"`, 'a 4-byte character that does not fit is left out whole');
  const e = text(`${'a'.repeat(252)}é`).value;
  assert.equal(e, `"${'a'.repeat(252)}"`);
  const backslash = text(`${'a'.repeat(252)}\\`).value;
  assert.equal(backslash, `"${'a'.repeat(252)}"`, 'a backslash whose escape does not fit is left out with its escape');
  const quote = text(`${'a'.repeat(251)}"`).value;
  assert.equal(quote, `"${'a'.repeat(251)}\\""`);
  assert.equal(Buffer.byteLength(quote), 255);
  assert.ok(
    Buffer.from(text('雪'.repeat(200)).value)
      .toString('utf8')
      .endsWith('雪"'),
  );
});

test('control bytes in client text are replaced, never passed on for OpenVPN to drop', () => {
  assert.equal(clientDeny(1, 2, 'E\u0001ND\ttab\u007f\u009b').text, 'client-deny 1 2 "E_ND_tab__"\n');
});

test('text that must arrive exactly, config lines and words are refused when they would not', () => {
  assert.throws(() => clientPendingAuth(1, 1, `WEB_AUTH::https://sso/${'x'.repeat(300)}`, 60), /longer than OpenVPN takes/);
  assert.throws(() => clientPendingAuth(1, 1, 'WEB_AUTH::a\nsignal SIGTERM', 60), /control character/);
  assert.throws(() => clientAuth(1, 1, ['push "route 10.0.0.0 255.0.0.0"', 'E\u0001ND', 'signal SIGTERM']), /control character/);
  assert.throws(() => clientAuth(1, 1, ['push "a\tb"']), /control character/);
  assert.throws(() => clientAuth(1, 1, ['push "c1\u0085"']), /control character/);
  assert.throws(() => clientAuth(1, 1, [` END `]), /END/);
  assert.throws(() => clientAuth(1, 1, [`push "${'x'.repeat(300)}"`]), /longer than 255/);
  assert.throws(() => word('status 3'), /not a plain word/);
  assert.throws(() => word('"x'), /not a plain word/);
  assert.throws(() => command('single', 'signal SIGTERM'), /not a plain word/);
  assert.throws(() => password('pw\nsignal SIGTERM'), /control character/);
  assert.throws(() => password('x'.repeat(2000)), /longer than/);
  assert.throws(() => new EncodedCommand(Symbol('encoded') as never, 'signal SIGTERM\n', 'single', 'x'), /made by the encoder only/);
  assert.equal(simpleCommand('status 3').text, 'status 3\n');
  assert.equal(simpleCommand('hold release').text, 'hold release\n');
});

test('a client-auth block keeps every line whole: no line reads END and none is a command', () => {
  const cmd = clientAuth(7, 1, ['push "route 10.1.0.0 255.255.0.0"', 'push "dhcp-option DOMAIN \\"x\\""', 'ifconfig-push 10.8.0.9 255.255.255.0']);
  const lines = cmd.text.split('\n');
  assert.deepEqual(lines, [
    'client-auth 7 1',
    'push "route 10.1.0.0 255.255.0.0"',
    'push "dhcp-option DOMAIN \\"x\\""',
    'ifconfig-push 10.8.0.9 255.255.255.0',
    'END',
    '',
  ]);
  assert.ok(lines.every((l) => Buffer.byteLength(l) < 1024));
});

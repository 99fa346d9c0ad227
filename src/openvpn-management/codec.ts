/**
 * @module openvpn-management/codec
 * A typed codec for OpenVPN's management interface protocol (management-notes.txt), with no
 * I/O and no dependency: feed it bytes as they arrive, get typed messages out; ask it for the
 * exact text of a command. It knows nothing of the rest of openvpn-flexscript.
 *
 * @example
 * const decoder = new ManagementDecoder();
 * decoder.expect('multi');              // before writing `status 3`
 * for (const m of decoder.push(chunk)) if (m.type === 'client-connect') ...
 */
import { LineSplitter } from '../util/line-splitter.ts';

/** Reply shape of a command: one `SUCCESS:`/`ERROR:` line, or lines ending in `END`. */
export type ReplyShape = 'single' | 'multi';

export type ManagementMessage =
  | { type: 'client-connect'; cid: number; kid: number; reauth: boolean; env: Record<string, string> }
  | { type: 'client-established'; cid: number; env: Record<string, string> }
  | { type: 'client-disconnect'; cid: number; env: Record<string, string> }
  | { type: 'client-cr-response'; cid: number; kid: number; response: string; env: Record<string, string> }
  | { type: 'client-address'; cid: number; address: string; primary: boolean }
  | { type: 'bytecount-cli'; cid: number; bytesIn: number; bytesOut: number }
  | { type: 'bytecount'; bytesIn: number; bytesOut: number }
  | { type: 'info'; text: string }
  | { type: 'hold'; text: string }
  | { type: 'log'; time: number; flags: string; text: string }
  | { type: 'state'; time: number; state: string; fields: string[] }
  | { type: 'password'; text: string }
  | { type: 'password-prompt' }
  | { type: 'notify'; text: string }
  | { type: 'fatal'; text: string }
  | { type: 'echo'; text: string }
  | { type: 'success'; text: string }
  | { type: 'error'; text: string }
  | { type: 'multiline'; lines: string[] }
  | { type: 'unknown'; line: string };

const PROMPT = 'ENTER PASSWORD:';
const PROMPT_BYTES = Buffer.from(PROMPT);
const ENV_PREFIX = '>CLIENT:ENV,';
const CLIENT_BLOCK = /^>CLIENT:(CONNECT|REAUTH|ESTABLISHED|DISCONNECT|CR_RESPONSE),(\d+)(?:,(\d+))?(?:,(.*))?$/;

function splitOnce(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * Decodes the byte stream from OpenVPN. Lines may be split anywhere (inside a UTF-8
 * character or between CR and LF). Notifications may arrive before a reply begins; once a
 * multi-line reply has begun, OpenVPN writes it whole, and every line up to its END is reply
 * text (rows of `status` start with client-chosen names). So the decoder must be told, in
 * write order, the shape of each command's reply (`expect`).
 */
export class ManagementDecoder {
  // no limit: the peer is OpenVPN itself, whose own buffers bound its lines
  #splitter = new LineSplitter(Number.POSITIVE_INFINITY);
  #expect: ReplyShape[] = [];
  #multi: string[] | undefined;
  #block: { head: RegExpExecArray; env: Record<string, string> } | undefined;
  /** OpenVPN asks for its password only before its banner (`>INFO:`); never after it. */
  #prompting = true;

  /** Tells the decoder that a command with this reply shape was written (in write order). */
  expect(shape: ReplyShape): void {
    this.#expect.push(shape);
  }

  /** Forgets pending replies and partial input (after a reconnect). */
  reset(): void {
    this.#splitter = new LineSplitter(Number.POSITIVE_INFINITY);
    this.#expect = [];
    this.#multi = undefined;
    this.#block = undefined;
    this.#prompting = true;
  }

  push(chunk: Buffer | string): ManagementMessage[] {
    const out: ManagementMessage[] = [];
    this.#splitter.split(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, { line: (line) => this.#line(line, out) });
    // the password prompt is the one thing OpenVPN sends without a newline
    if (this.#prompting && !this.#multi && this.#splitter.takePrefix(PROMPT_BYTES)) out.push({ type: 'password-prompt' });
    return out;
  }

  /** Decodes one line, adding what it completes to `out` (most lines, ENV ones, complete nothing). */
  #line(line: string, out: ManagementMessage[]): void {
    // Inside a multi-line reply every line up to END is reply text, whatever it looks like: a
    // `status` row begins with a common name, and a certificate may be named `>CLIENT:...`.
    if (this.#multi) {
      if (line === 'END') {
        const lines = this.#multi;
        this.#multi = undefined;
        this.#expect.shift();
        out.push({ type: 'multiline', lines });
      } else this.#multi.push(line);
      return;
    }
    // the prompt has no newline of its own, so the reply to the password can follow on its line
    if (this.#prompting && line.startsWith(PROMPT)) {
      out.push({ type: 'password-prompt' });
      this.#line(line.slice(PROMPT.length), out);
      return;
    }
    if (line.startsWith('>')) {
      this.#notification(line, out);
      return;
    }
    if (line.startsWith('SUCCESS:') || line.startsWith('ERROR:')) {
      // an error can end a command that would have given lines (e.g. a bad `status` argument)
      this.#expect.shift();
      const ok = line.startsWith('SUCCESS:');
      out.push({ type: ok ? 'success' : 'error', text: line.slice(ok ? 8 : 6).trim() });
      return;
    }
    if (this.#expect[0] === 'multi') {
      if (line === 'END') {
        this.#expect.shift();
        out.push({ type: 'multiline', lines: [] });
      } else this.#multi = [line];
      return;
    }
    if (line !== '') out.push({ type: 'unknown', line });
  }

  #notification(line: string, out: ManagementMessage[]): void {
    if (this.#block) {
      // a block cut short by another notification: emit what we have, then handle the line
      if (!line.startsWith(ENV_PREFIX)) {
        out.push(this.#finishBlock());
        this.#notification(line, out);
        return;
      }
      if (line.length === ENV_PREFIX.length + 3 && line.endsWith('END')) {
        out.push(this.#finishBlock());
        return;
      }
      // KEY=VALUE: the first `=` ends the key (a value may hold more); no `=`, an empty value
      const eq = line.indexOf('=', ENV_PREFIX.length);
      if (eq < 0) this.#block.env[line.slice(ENV_PREFIX.length)] = '';
      else this.#block.env[line.slice(ENV_PREFIX.length, eq)] = line.slice(eq + 1);
      return;
    }
    const m = this.#single(line);
    if (m) out.push(m);
  }

  #single(line: string): ManagementMessage | undefined {
    const [kind, rest] = splitOnce(line.slice(1), ':');
    switch (kind) {
      case 'CLIENT': {
        const head = CLIENT_BLOCK.exec(line);
        if (head) {
          this.#block = { head, env: {} };
          return undefined;
        }
        const addr = /^ADDRESS,(\d+),([^,]+),(\d)$/.exec(rest);
        if (addr) return { type: 'client-address', cid: Number(addr[1]), address: addr[2]!, primary: addr[3] === '1' };
        return { type: 'unknown', line };
      }
      case 'BYTECOUNT_CLI': {
        const [cid, bin, bout] = rest.split(',');
        return { type: 'bytecount-cli', cid: Number(cid), bytesIn: Number(bin), bytesOut: Number(bout) };
      }
      case 'BYTECOUNT': {
        const [bin, bout] = rest.split(',');
        return { type: 'bytecount', bytesIn: Number(bin), bytesOut: Number(bout) };
      }
      case 'INFO':
        this.#prompting = false;
        return { type: 'info', text: rest };
      case 'HOLD':
        return { type: 'hold', text: rest };
      case 'LOG': {
        const [time, r1] = splitOnce(rest, ',');
        const [flags, text] = splitOnce(r1, ',');
        return { type: 'log', time: Number(time), flags, text };
      }
      case 'STATE': {
        const [time, state, ...fields] = rest.split(',');
        return { type: 'state', time: Number(time), state: state ?? '', fields };
      }
      case 'PASSWORD':
        return { type: 'password', text: rest };
      case 'NOTIFY':
        return { type: 'notify', text: rest };
      case 'FATAL':
        return { type: 'fatal', text: rest };
      case 'ECHO':
        return { type: 'echo', text: rest };
      default:
        return { type: 'unknown', line };
    }
  }

  #finishBlock(): ManagementMessage {
    const { head, env } = this.#block!;
    this.#block = undefined;
    const cid = Number(head[2]);
    const kid = Number(head[3] ?? 0);
    switch (head[1]) {
      case 'CONNECT':
      case 'REAUTH':
        return { type: 'client-connect', cid, kid, reauth: head[1] === 'REAUTH', env };
      case 'ESTABLISHED':
        return { type: 'client-established', cid, env };
      case 'DISCONNECT':
        return { type: 'client-disconnect', cid, env };
      default:
        return { type: 'client-cr-response', cid, kid, response: head[4] ?? '', env };
    }
  }
}

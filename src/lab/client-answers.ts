/**
 * @module client-answers
 * Answers a lab client's questions the way a VPN GUI does, over the client's own management
 * interface (`management-query-passwords`): the username and password, with the response to a
 * static challenge (`SCRV1:...`), the answer to a CRV1 challenge on the next connect
 * (`CRV1::state::response`), and the answer to a dynamic CR_TEXT challenge (`cr-response`).
 * OpenVPN 2.6 reads a static-challenge response only from its console or this interface, never
 * from the `auth-user-pass` file, so a client without a terminal needs this.
 */
import { connect, type Socket } from 'node:net';
import { LineSplitter } from '../util/line-splitter.ts';
import { waitFor } from './wait.ts';

/** A question the client was asked, as the user would see it. */
export interface ClientQuestion {
  readonly kind: 'static' | 'crv1' | 'cr-text';
  readonly text: string;
}

export interface ClientAnswers {
  readonly username: string;
  readonly password: string;
  /** Ask again after AUTH_FAILED (`auth-retry interact`), as a CRV1 challenge needs; otherwise the client exits. */
  readonly retry?: boolean;
  /** The user's answer (a one-time code) to a question. */
  respond(question: ClientQuestion): string | Promise<string>;
}

/** Client config lines that route every question to the management socket at `socket`. */
export function answerConfig(socket: string, answers: ClientAnswers): string[] {
  return [`management ${socket} unix`, 'management-query-passwords', 'management-hold', 'auth-user-pass', ...(answers.retry ? ['auth-retry interact'] : [])];
}

const quoted = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A starting client's management socket, once it listens. */
export function connectClientManagement(socket: string, timeoutMs = 30_000): Promise<Socket> {
  return waitFor(
    `client management socket ${socket}`,
    () =>
      new Promise<Socket | undefined>((resolve) => {
        const s = connect(socket);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      }),
    { timeoutMs, intervalMs: 100 },
  );
}

/** Connects to a starting client's management socket and answers until `close()`. */
export async function answerClient(
  socket: string,
  answers: ClientAnswers,
  timeoutMs = 30_000,
): Promise<{ readonly questions: ClientQuestion[]; close(): void }> {
  const sock = await connectClientManagement(socket, timeoutMs);
  const questions: ClientQuestion[] = [];
  let crv1: { state: string; username: string; text: string } | undefined;
  const send = (line: string) => sock.write(`${line}\n`);
  const splitter = new LineSplitter(Number.POSITIVE_INFINITY);
  const onLine = async (line: string) => {
    if (line.startsWith('>HOLD:')) return send('hold release');
    const failed = /^>PASSWORD:Verification Failed: 'Auth' \['CRV1:([^:]*):([^:]*):([^:]*):(.*)'\]$/.exec(line);
    if (failed) {
      crv1 = { state: failed[2]!, username: Buffer.from(failed[3]!, 'base64').toString(), text: failed[4]! };
      return;
    }
    const need = /^>PASSWORD:Need 'Auth' username\/password(?: SC:(\d),(.*))?$/.exec(line);
    if (need) {
      if (crv1) {
        const q: ClientQuestion = { kind: 'crv1', text: crv1.text };
        questions.push(q);
        send(`username "Auth" ${quoted(crv1.username)}`);
        send(`password "Auth" ${quoted(`CRV1::${crv1.state}::${await answers.respond(q)}`)}`);
        crv1 = undefined;
      } else if (need[1] !== undefined) {
        const q: ClientQuestion = { kind: 'static', text: need[2] ?? '' };
        questions.push(q);
        send(`username "Auth" ${quoted(answers.username)}`);
        send(`password "Auth" ${quoted(`SCRV1:${b64(answers.password)}:${b64(await answers.respond(q))}`)}`);
      } else {
        send(`username "Auth" ${quoted(answers.username)}`);
        send(`password "Auth" ${quoted(answers.password)}`);
      }
      return;
    }
    const crText = /^>INFOMSG:CR_TEXT:([^:]*):(.*)$/.exec(line);
    if (crText) {
      const q: ClientQuestion = { kind: 'cr-text', text: crText[2]! };
      questions.push(q);
      send(`cr-response ${b64(await answers.respond(q))}`);
    }
  };
  sock.on('data', (chunk: Buffer) => splitter.split(chunk, { line: (l) => void onLine(l) }));
  sock.on('error', () => undefined);
  return { questions, close: () => sock.destroy() };
}

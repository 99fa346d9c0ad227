/**
 * ctx.challenge() in management mode against a scripted OpenVPN on a unix socket: the question
 * goes out as `client-pending-auth CID KID "CR_TEXT:..."`, and only the CR_RESPONSE of that very
 * client key answers it; a response that is not base64 text, and a client that leaves, reject it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../../logger.ts';
import type { Decision, RunOptions } from '../../core/decision.ts';
import type { EventSink, RawInput } from '../../events/source.ts';
import { waitFor } from '../../lab/wait.ts';
import { ManagementSource } from './management-source.ts';

/** A management interface that answers what the source asks on attach and records every command. */
async function fakeOpenvpn(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-challenge-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'mgmt.sock');
  const commands: string[] = [];
  let peer: Socket | undefined;
  const server = createServer((s) => {
    peer = s;
    s.write(">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n");
    let buf = '';
    s.on('data', (chunk) => {
      buf += String(chunk);
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        commands.push(line);
        if (line === 'status 3') s.write('TITLE,OpenVPN\r\nEND\r\n');
        else if (line === 'pid') s.write('SUCCESS: pid=4242\r\n');
        else s.write('SUCCESS: ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.after(
    () =>
      new Promise<void>((r) => {
        peer?.destroy();
        server.close(() => r());
      }),
  );
  const send = (lines: string[]) => peer!.write(lines.map((l) => `${l}\r\n`).join(''));
  return { path, commands, send };
}

async function sourceWith(t: TestContext, onAuth: (run: RunOptions) => Promise<Decision>) {
  const openvpn = await fakeOpenvpn(t);
  const sink = {
    handles: (name: string) => name === 'user-pass-verify',
    handle: (input: RawInput) =>
      input.raw.name === 'user-pass-verify' ? onAuth(input.run ?? {}) : Promise.resolve<Decision>({ verdict: 'accept', config: [] }),
    addressAssigned: async () => ({ verdict: 'accept', config: [] }),
    learnAtConnect: async () => undefined,
    rebuild: async () => ({ rebuilt: 0, closedAsMissed: 0 }),
    client: () => undefined,
    clients: () => [],
  } as unknown as EventSink;
  const source = await ManagementSource.start({
    config: { name: 'fake', socket: openvpn.path } as never,
    sink,
    log: createLogger(process.env.DEBUG_CHALLENGE ? 'debug' : 'silent'),
    commandTimeoutMs: 5000,
    fastPush: false,
  });
  t.after(() => source.close());
  await waitFor('status asked on attach', () => openvpn.commands.includes('status 3'));
  return openvpn;
}

const connect = (cid: number, kid = 0) => [
  `>CLIENT:CONNECT,${cid},${kid}`,
  '>CLIENT:ENV,common_name=c',
  '>CLIENT:ENV,username=u',
  '>CLIENT:ENV,password=p',
  '>CLIENT:ENV,END',
];
const crResponse = (cid: number, kid: number, b64: string) => [`>CLIENT:CR_RESPONSE,${cid},${kid},${b64}`, '>CLIENT:ENV,END'];

test('the question goes out as CR_TEXT for that client key; only its own CR_RESPONSE answers it', async (t) => {
  const answers: string[] = [];
  const openvpn = await sourceWith(t, async (run) => {
    answers.push(await run.challenge!({ text: 'Code?', timeout: 30 }, new AbortController().signal));
    return { verdict: 'accept', config: [] };
  });
  openvpn.send(connect(7, 1));
  await waitFor('the challenge', () => openvpn.commands.includes('client-pending-auth 7 1 "CR_TEXT:E,R:Code?" 30'));
  // another key's answer, and one for a client nobody asked, answer nothing
  openvpn.send([...crResponse(7, 0, 'OTk5OTk5'), ...crResponse(8, 1, 'OTk5OTk5')]);
  openvpn.send(crResponse(7, 1, Buffer.from('123456').toString('base64')));
  await waitFor('the answer', () => openvpn.commands.includes('client-auth-nt 7 1'));
  assert.deepEqual(answers, ['123456']);
});

test('a response that is not base64 text, and a client that leaves, reject the challenge', async (t) => {
  const failures: string[] = [];
  const openvpn = await sourceWith(t, async (run) => {
    try {
      await run.challenge!({ text: 'Code?', timeout: 30, echo: false }, new AbortController().signal);
    } catch (err) {
      failures.push((err as Error).message);
    }
    return { verdict: 'deny', reason: 'no code', config: [] };
  });
  openvpn.send(connect(3));
  await waitFor('the first challenge', () => openvpn.commands.includes('client-pending-auth 3 0 "CR_TEXT:R:Code?" 30'));
  openvpn.send(crResponse(3, 0, '$(id)'));
  await waitFor('the deny', () => openvpn.commands.some((c) => c.startsWith('client-deny 3 0')));
  openvpn.send(connect(4));
  await waitFor('the second challenge', () => openvpn.commands.includes('client-pending-auth 4 0 "CR_TEXT:R:Code?" 30'));
  openvpn.send(['>CLIENT:DISCONNECT,4', '>CLIENT:ENV,END']);
  await waitFor('the second deny', () => openvpn.commands.some((c) => c.startsWith('client-deny 4 0')));
  assert.deepEqual(failures, ['the challenge response is not base64 of UTF-8 text', 'the client left before it answered']);
});

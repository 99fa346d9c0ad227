/**
 * Rebuilding hook-mode sessions from OpenVPN's status file (`status-version 3`, as OpenVPN
 * 2.6 writes it): listed clients with an address become sessions, nothing else is invented.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Dispatcher } from '../../daemon/dispatcher.ts';
import { createLogger, type Logger } from '../../logger.ts';
import { Pipeline } from '../../pipeline/pipeline.ts';
import { rebuildFromStatusFile } from './status-file.ts';

/** The daemon's own sink; usernames listed by OpenVPN count as verified, as when OpenVPN checks them. */
const sinkFor = (log: Logger) => new Dispatcher(new Pipeline([], log), log, 4, { usernamesVerifiedByOpenvpn: true });

const STATUS = [
  'TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)]',
  'TIME\t2026-11-28 19:11:50\t1795893110',
  'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher',
  'CLIENT_LIST\talice\t127.0.0.1:45572\t10.77.75.2\tfd00:e2e::1000\t2055\t2138\t2026-11-28 19:11:49\t1795893109\tUNDEF\t0\t0\tAES-256-GCM',
  'CLIENT_LIST\tx$(reboot);"\t127.0.0.1:40466\t10.77.75.3\t\t2041\t1926\t2026-11-28 19:11:49\t1795893109\tbob\t1\t1\tAES-256-GCM',
  // still waiting for its connect answer: no address, no session
  'CLIENT_LIST\tcarol\t127.0.0.1:40467\t\t\t0\t0\t2026-11-28 19:11:50\t1795893110\tUNDEF\t2\t2\tAES-256-GCM',
  'HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)',
  'ROUTING_TABLE\t10.77.75.2\talice\t127.0.0.1:45572\t2026-11-28 19:11:49\t1795893109',
  'END',
].join('\n');

async function rebuild(text: string | undefined) {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-status-'));
  try {
    const file = join(dir, 'status.txt');
    if (text !== undefined) await writeFile(file, text);
    const sink = sinkFor(createLogger('silent'));
    const asOf = await rebuildFromStatusFile(file, 'vpn1', sink, createLogger('silent'));
    return { asOf, sessions: sink.sessions.list() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('clients with an address become live sessions, as of the file time', async () => {
  const { asOf, sessions } = await rebuild(STATUS);
  assert.equal(asOf, 1795893110_000);
  assert.deepEqual(
    sessions.map((s) => [s.commonName, s.username, s.realAddress, s.realPort, s.vpnAddress, s.vpnAddress6, s.connectedAt]),
    [
      ['alice', undefined, '127.0.0.1', 45572, '10.77.75.2', 'fd00:e2e::1000', 1795893109_000],
      ['x$(reboot);"', 'bob', '127.0.0.1', 40466, '10.77.75.3', undefined, 1795893109_000],
    ],
  );
  assert.deepEqual(
    sessions.map((s) => s.key),
    [
      { via: 'hook', instance: 'vpn1', realAddress: '127.0.0.1', realPort: 45572, commonName: 'alice' },
      { via: 'hook', instance: 'vpn1', realAddress: '127.0.0.1', realPort: 40466, commonName: 'x$(reboot);"' },
    ],
  );
  assert.ok(sessions.every((s) => s.instance === 'vpn1'));
});

test('a missing or empty status file rebuilds nothing', async () => {
  assert.deepEqual(await rebuild(undefined), { asOf: 0, sessions: [] });
  assert.deepEqual(await rebuild(''), { asOf: 0, sessions: [] });
});

test('a status file OpenVPN writes in another version rebuilds nothing, and says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-status-'));
  try {
    const file = join(dir, 'status.txt');
    // what Debian's openvpn-server@ unit gives (--status-version 2) without status-version 3 in the config
    await writeFile(
      file,
      'TITLE,OpenVPN 2.6.14\nTIME,2026-11-28 19:11:50,1795893110\nHEADER,CLIENT_LIST,Common Name,Real Address\nCLIENT_LIST,alice,127.0.0.1:1\nEND\n',
    );
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk, _e, cb) => {
        lines.push(String(chunk));
        cb();
      },
    });
    const daemon = sinkFor(createLogger('silent'));
    await rebuildFromStatusFile(file, 'vpn1', daemon, createLogger('info', sink));
    assert.deepEqual(daemon.sessions.list(), []);
    assert.ok(
      lines.some((l) => l.includes('OpenVPN status file is not status-version 3') && l.includes('"level":50')),
      lines.join(''),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** The clients a rebuild lists when it first finds `caught` and OpenVPN's whole rewrite lands a moment later. */
async function listedAfterRewrite(caught: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-status-'));
  try {
    const file = join(dir, 'status.txt');
    await writeFile(file, caught);
    const sink = sinkFor(createLogger('silent'));
    const done = rebuildFromStatusFile(file, 'vpn1', sink, createLogger('silent'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writeFile(file, `${STATUS}\n`);
    await done;
    return sink.sessions
      .list()
      .map((s) => s.commonName)
      .sort();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a status file caught between its truncate and its write (empty) is read again: no listed client is lost', async () => {
  assert.deepEqual(await listedAfterRewrite(''), ['alice', 'x$(reboot);"']);
});

test('a status file caught half rewritten is read again until its END line: no listed client is lost', async () => {
  // OpenVPN truncates and rewrites: the reader first sees the file cut before bob's row
  assert.deepEqual(await listedAfterRewrite(STATUS.slice(0, STATUS.indexOf('CLIENT_LIST\tx$(reboot)'))), ['alice', 'x$(reboot);"']);
});

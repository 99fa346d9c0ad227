/**
 * The root stage facing a compromised daemon: a process running as nobody starts the real
 * flexscript-root through real `sudo -n` (as the daemon does) inside a throwaway network
 * namespace, and writes whatever lines it likes. The stage must touch only VPN client
 * addresses, keep a bounded number of processes and requests, and route only into the VPN.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LIMITS, RootErrorCode } from '../../src/root/protocol.ts';
import { rootCommand } from '../../src/root/sudoers.ts';
import { cleanupRootStages, DirectStage, Driver, installSudoers, Netns, trustedTempDir } from '../root/harness.ts';
import { waitFor } from '../root/wait.ts';

const isRoot = process.getuid?.() === 0;
const TABLE = 'fxs_limits';
const CONFIG = `# the root config of the test
table: ${TABLE}
vpn-interfaces: [fxs0]
vpn-networks: [10.8.0.0/24, "fd00:8::/64"]
groups:
  staff:
    allow:
      - { to: 10.0.0.0/24, protocol: tcp, ports: [22] }
routes:
  proto: 250
  allowed: [10.9.0.0/16]
`;

const line = (o: object) => `${JSON.stringify(o)}\n`;
type Response = { id: number | null; ok: boolean; error?: { code: string; message: string } };

/**
 * Pids of the tool processes the stage `pid` runs right now (zombies included: processes not
 * yet reaped). The stage runs compiled JavaScript and has no other children.
 */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const kids: number[] = [];
  for (const task of tasks) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const word of text.split(/\s+/)) if (word) kids.push(Number(word));
  }
  return kids;
}

/** Samples the number of children of `pid` until `stop` is set; resolves with the largest seen. */
function watchChildren(pid: number, stop: { done: boolean }): Promise<number> {
  return (async () => {
    let most = 0;
    while (!stop.done) {
      most = Math.max(most, (await childrenOf(pid)).length);
      await new Promise((r) => setImmediate(r));
    }
    return most;
  })();
}

describe('the root stage against a compromised daemon', { skip: isRoot ? false : 'needs root' }, () => {
  const ns = new Netns();
  let dir = '';
  let config = '';
  let sudoersFile = '';

  before(async () => {
    dir = await trustedTempDir('root-limits-');
    config = join(dir, 'root.yaml');
    await writeFile(config, CONFIG, { mode: 0o644 });
    await ns.create();
    // a second interface that is not a VPN interface: a gateway there leads out of the VPN
    await ns.exec(['ip', 'tuntap', 'add', 'fxs1', 'mode', 'tun']);
    await ns.exec(['ip', 'link', 'set', 'fxs1', 'up']);
    await ns.exec(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'fxs1']);
    sudoersFile = await installSudoers('nobody', rootCommand(config), dir);
  });

  after(async () => {
    await cleanupRootStages();
    await ns.delete();
    if (sudoersFile) await rm(sudoersFile, { force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The real root stage, started through sudo as nobody, the way a compromised daemon could. */
  async function hostileDaemon(t: { after(fn: () => unknown): void }): Promise<DirectStage & { pid: number }> {
    const stage = new DirectStage(ns, config, { asDaemon: true });
    t.after(() => stage.kill());
    const ready = (await stage.ready().catch((err: Error) => {
      throw new Error(`${err.message}; stage log: ${JSON.stringify(stage.logs)}`);
    })) as { pid: number };
    return Object.assign(stage, { pid: ready.pid });
  }

  test('conntrack-flush is refused for loopback, multicast, the server itself and anything outside the VPN networks', async (t) => {
    const stage = await hostileDaemon(t);
    // flows that must survive: the server's own (VPN and loopback) and one outside the VPN
    for (const [src, dst] of [
      ['127.0.0.1', '127.0.0.2'],
      ['10.8.0.1', '10.0.0.9'],
      ['192.0.2.1', '192.0.2.9'],
    ] as const) {
      const insert = await ns.exec(['conntrack', '-I', '-p', 'udp', '-s', src, '-d', dst, '--sport', '4000', '--dport', '53', '-t', '120']);
      assert.equal(insert.code, 0, insert.stderr);
    }
    const logsFrom = stage.logs.length;
    const refused = [
      '127.0.0.1',
      '::1',
      '10.8.0.1',
      'fd00:8::1',
      '224.0.0.1',
      'ff02::1',
      '192.0.2.1',
      '10.99.0.5',
      '8.8.8.8',
      '10.8.0.0',
      '10.8.0.255',
      '255.255.255.255',
    ];
    let id = 0;
    for (const address of refused) {
      const r = (await stage.send(line({ id: ++id, action: 'conntrack-flush', address }))) as Response;
      assert.equal(r.ok, false, `conntrack-flush ${address} was accepted`);
      assert.equal(r.error?.code, RootErrorCode.ADDRESS_REFUSED, `${address}: ${JSON.stringify(r.error)}`);
      assert.match(r.error?.message ?? '', new RegExp(address.replace(/[.:]/g, '\\$&')), 'the message names the address');
    }
    // the same rule for the sets: nothing but a client address joins a group
    for (const address of ['127.0.0.1', '10.8.0.1', '224.0.0.1', '10.99.0.5']) {
      const r = (await stage.send(line({ id: ++id, action: 'set-add', group: 'staff', address }))) as Response;
      assert.equal(r.error?.code, RootErrorCode.ADDRESS_REFUSED, `set-add ${address}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(
      stage.logs.slice(logsFrom).filter((l) => l.msg === 'conntrack flush' || l.msg === 'nft run'),
      [],
      'no tool ran',
    );
    for (const src of ['127.0.0.1', '10.8.0.1', '192.0.2.1']) {
      assert.match((await ns.exec(['conntrack', '-L', '-s', src])).stderr, /1 flow entries/, `the flow of ${src} is still there`);
    }
    // a client address is still served
    const ok = (await stage.send(line({ id: ++id, action: 'conntrack-flush', address: '10.8.0.7' }))) as Response;
    assert.equal(ok.ok, true, JSON.stringify(ok));
  });

  test('a burst of 5,000 conntrack-flush lines never runs more than the process limit; the excess is refused as busy and the stage stays responsive', async (t) => {
    const stage = await hostileDaemon(t);
    const before = stage.responses.length;
    const burst = Array.from({ length: 5000 }, (_, i) => line({ id: 10_000 + i, action: 'conntrack-flush', address: `10.8.0.${(i % 250) + 2}` })).join('');
    const stop = { done: false };
    const most = watchChildren(stage.pid, stop);
    const started = Date.now();
    stage.child.stdin.write(burst);
    // asked in the middle of the burst: served at once, the flushes do not hold up nft
    stage.child.stdin.write(line({ id: 1, action: 'list' }));
    const probeAnswer = (await waitFor(
      'an answer to a request sent in the middle of the burst',
      () => stage.responses.slice(before).find((r) => r.id === 1),
      10_000,
    )) as Response;
    await waitFor('an answer to every line of the burst', () => stage.responses.length - before >= 5001, 120_000);
    stop.done = true;
    const peak = await most;
    const answers = stage.responses.slice(before).filter((r) => r.id !== 1) as Response[];
    const outcomes: Record<string, number> = {};
    for (const r of answers) outcomes[r.ok ? 'ok' : (r.error?.code ?? '?')] = (outcomes[r.ok ? 'ok' : (r.error?.code ?? '?')] ?? 0) + 1;
    t.diagnostic(
      `5,000 lines: ${JSON.stringify(outcomes)} in ${Date.now() - started} ms, at most ${peak} child processes; mid-burst probe: ${JSON.stringify(probeAnswer)}`,
    );
    assert.ok(peak <= LIMITS.processes, `${peak} child processes at once, the limit is ${LIMITS.processes}`);
    assert.equal(answers.length, 5000);
    assert.deepEqual(Object.keys(outcomes).sort(), ['FXS_ROOT_BUSY', 'ok'], JSON.stringify(outcomes));
    assert.ok((outcomes.ok ?? 0) <= 5000 - (outcomes[RootErrorCode.BUSY] ?? 0));
    const busy = answers.find((r) => !r.ok);
    assert.match(busy?.error?.message ?? '', /busy: \d+ (conntrack-flush )?requests in flight \(at most \d+/, 'the refusal says why');
    // a flood of flushes holds at most its own share of the stage
    assert.ok((outcomes.ok ?? 0) < 5000 / 2, JSON.stringify(outcomes));
    assert.equal(probeAnswer.ok, true, `a request in the middle of the flood is served: ${JSON.stringify(probeAnswer)}`);
    // and once the burst is done, it serves at once
    const after = (await stage.send(line({ id: 2, action: 'list' }))) as Response;
    assert.equal(after.ok, true, JSON.stringify(after));
  });

  test('the daemon side keeps within the limits: a disconnect storm of 600 flushes through the real client all succeed, never refused, never over the process limit', async (t) => {
    const driver = new Driver(ns, config);
    t.after(() => driver.kill());
    // more than the stage holds at once; each flush runs conntrack twice, slow on a busy machine
    await driver.send('start', { restart: { minMs: 2000, maxMs: 8000 }, timeoutMs: 300_000 });
    await waitFor('the root stage to start through sudo', async () => (await driver.stats()).reconciles >= 1, 30_000);
    const pid = driver.lastRootPid();
    assert.ok(pid);
    const stop = { done: false };
    const most = watchChildren(pid, stop);
    const addresses = Array.from({ length: 600 }, (_, i) => `10.8.0.${(i % 250) + 2}`);
    const result = await driver.send<{ outcomes: Record<string, number>; ms: number }>('burst', { method: 'conntrackFlush', addresses });
    stop.done = true;
    const peak = await most;
    t.diagnostic(`600 flushes through RootClient: ${JSON.stringify(result)}, at most ${peak} child processes`);
    assert.deepEqual(result.outcomes, { ok: 600 });
    assert.ok(peak <= LIMITS.processes, `${peak} child processes at once`);
  });

  test('route-add leads only into a VPN interface: a gateway without a device, or outside the VPN networks, is refused', async (t) => {
    const stage = await hostileDaemon(t);
    const routesBefore = (await ns.exec(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout;
    const cases: [string, object, string][] = [
      ['a gateway on another interface, no device', { network: '10.9.1.0/24', via: '192.0.2.2' }, RootErrorCode.ROUTE_REFUSED],
      ['a VPN gateway but no device', { network: '10.9.2.0/24', via: '10.8.0.2' }, RootErrorCode.ROUTE_REFUSED],
      ['a gateway outside the VPN networks, with the VPN device', { network: '10.9.3.0/24', via: '192.0.2.2', dev: 'fxs0' }, RootErrorCode.ADDRESS_REFUSED],
      ['the server itself as gateway', { network: '10.9.4.0/24', via: '10.8.0.1', dev: 'fxs0' }, RootErrorCode.ADDRESS_REFUSED],
      ['a device that is not a VPN interface', { network: '10.9.5.0/24', dev: 'fxs1' }, RootErrorCode.UNKNOWN_DEVICE],
      ['a device that is not a VPN interface, with a gateway', { network: '10.9.6.0/24', via: '192.0.2.2', dev: 'fxs1' }, RootErrorCode.UNKNOWN_DEVICE],
    ];
    let id = 100;
    for (const [what, route, code] of cases) {
      const r = (await stage.send(line({ id: ++id, action: 'route-add', ...route }))) as Response;
      assert.equal(r.ok, false, `${what}: accepted`);
      assert.equal(r.error?.code, code, `${what}: ${JSON.stringify(r.error)}`);
    }
    // the same for a reconcile
    const rec = (await stage.send(line({ id: ++id, action: 'reconcile', sets: {}, routes: [{ network: '10.9.7.0/24', via: '192.0.2.2' }] }))) as Response;
    assert.equal(rec.error?.code, RootErrorCode.ROUTE_REFUSED, JSON.stringify(rec));
    assert.equal((await ns.exec(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout, routesBefore, 'no route changed');
    // what a route into the VPN looks like is still accepted
    const ok = (await stage.send(line({ id: ++id, action: 'route-add', network: '10.9.8.0/24', via: '10.8.0.2', dev: 'fxs0' }))) as Response;
    assert.equal(ok.ok, true, JSON.stringify(ok));
    const gone = (await stage.send(line({ id: ++id, action: 'route-remove', network: '10.9.8.0/24', dev: 'fxs0' }))) as Response;
    assert.equal(gone.ok, true, JSON.stringify(gone));
  });

  test('a root config without vpn-networks is refused at start, naming file, line and field', async (t) => {
    const old = join(dir, 'old.yaml');
    await writeFile(old, CONFIG.replace(/^vpn-networks:.*\n/m, ''), { mode: 0o644 });
    const stage = new DirectStage(ns, old);
    t.after(() => stage.kill());
    assert.equal(await stage.exited, 78);
    const fatal = stage.logs.find((l) => l.level === 'fatal');
    assert.match(String(fatal?.msg), new RegExp(`${old}:3: vpn-networks: required`));
  });
});

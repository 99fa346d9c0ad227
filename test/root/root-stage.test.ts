/**
 * The root stage for real: a throwaway network namespace (the host's nftables and routes are
 * never touched), a temporary sudoers drop-in, the daemon side running as `nobody` through real
 * `sudo -n`, real nft, ip and conntrack. Needs root.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RootErrorCode } from '../../src/root/protocol.ts';
import { rootCommand } from '../../src/root/sudoers.ts';
import { cleanupRootStages, DirectStage, Driver, installSudoers, Netns, trustedTempDir, uniqueSuffix } from './harness.ts';
import { waitFor } from './wait.ts';

const TABLE = 'fxs_test';
const CONFIG = `# the root config of the test
table: ${TABLE}
vpn-interfaces: [fxs0]
vpn-networks: [10.8.0.0/24, 10.16.0.0/12, 10.32.0.0/11, "fd00:8::/64"]
groups:
  staff:
    allow:
      - { to: 10.0.0.0/24, protocol: tcp, ports: [22, 443] }
      - { to: fd00:10::/64 }
  ops:
    allow:
      - { to: 10.0.1.0/24, protocol: icmp }
routes:
  proto: 250
  allowed: [10.9.0.0/16, fd00:9::/48]
`;

const isRoot = process.getuid?.() === 0;
const sorted = (a: readonly string[]) => [...a].sort();
const addresses = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${Math.floor(i / 250)}.${(i % 250) + 1}`);

describe('flexscript-root for real (netns, sudo, nobody)', { skip: isRoot ? false : 'needs root' }, () => {
  const ns = new Netns();
  let dir = '';
  let config = '';
  let sudoersFile = '';
  let driver: Driver | undefined;

  const d = () => {
    assert.ok(driver, 'driver started');
    return driver;
  };
  /** `{ code }` of a driver call that must fail. */
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('expected a refusal'),
      (e: { code?: string }) => e.code,
    );

  before(async () => {
    dir = await trustedTempDir('root-stage-');
    config = join(dir, 'root.yaml');
    await writeFile(config, CONFIG, { mode: 0o644 });
    await ns.create();
    sudoersFile = await installSudoers('nobody', rootCommand(config), dir);
    driver = new Driver(ns, config);
    await driver.send('start', { restart: { minMs: 2000, maxMs: 8000 } });
    await waitFor('the root stage to start through sudo and reconcile', async () => (await d().stats()).reconciles >= 1, 30_000).catch((err: Error) => {
      throw new Error(
        `${err.message}\ndriver log:\n${d()
          .logs.map((l) => JSON.stringify(l))
          .join('\n')}\n${d().stderr.join('\n')}`,
      );
    });
  });

  after(async () => {
    driver?.kill();
    if (driver) await waitFor('the driver to exit', () => driver?.child.exitCode !== null || driver?.child.signalCode !== null, 10_000).catch(() => {});
    await cleanupRootStages();
    await ns.delete();
    if (sudoersFile) await rm(sudoersFile, { force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the stage as root through sudo while the daemon side is nobody; ensure built the table', async () => {
    const rootPid = d().lastRootPid();
    assert.ok(rootPid, 'the stage logged ready with its pid');
    const uid = async (pid: number) => /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
    assert.equal(await uid(rootPid), '0');
    assert.equal(await uid(d().child.pid ?? 0), '65534');
    // the stage lives in the test's namespace, not the host's
    assert.equal(await readlink(`/proc/${rootPid}/ns/net`), await readlink(`/proc/${d().child.pid}/ns/net`));
    assert.notEqual(await readlink(`/proc/${rootPid}/ns/net`), await readlink('/proc/self/ns/net'));

    const listing = JSON.parse((await ns.exec(['nft', '-j', 'list', 'table', 'inet', TABLE])).stdout) as { nftables: Record<string, { name?: string }>[] };
    const names = (kind: string) => listing.nftables.filter((i) => i[kind]).map((i) => i[kind]?.name);
    assert.deepEqual(sorted(names('set') as string[]), ['g_ops_v4', 'g_ops_v6', 'g_staff_v4', 'g_staff_v6']);
    assert.deepEqual(names('chain'), ['forward']);
    const text = (await ns.exec(['nft', 'list', 'chain', 'inet', TABLE, 'forward'])).stdout;
    assert.match(text, /hook forward/);
    assert.match(text, /iifname "fxs0" ip saddr @g_staff_v4 ip daddr 10\.0\.0\.0\/24 tcp dport \{ 22, 443 \} accept/);
    assert.match(text, /iifname "fxs0" drop/);
  });

  it('adds and removes addresses in group sets (IPv4 and IPv6)', async () => {
    await d().call('setAdd', 'staff', '10.8.0.2');
    await d().call('setAdd', 'staff', 'FD00:8:0::2');
    await d().call('setAdd', 'ops', '10.8.0.3');
    assert.deepEqual(await ns.setElements(TABLE, 'g_staff_v4'), ['10.8.0.2']);
    assert.deepEqual(await ns.setElements(TABLE, 'g_staff_v6'), ['fd00:8::2']);
    assert.deepEqual(await ns.setElements(TABLE, 'g_ops_v4'), ['10.8.0.3']);
    await d().call('setRemove', 'staff', '10.8.0.2');
    await d().call('setRemove', 'staff', 'fd00:8::2');
    await d().call('setRemove', 'ops', '10.8.0.3');
    // removing what is already gone is not an error
    await d().call('setRemove', 'ops', '10.8.0.3');
    assert.deepEqual(await ns.setElements(TABLE, 'g_staff_v4'), []);
    assert.deepEqual(await ns.setElements(TABLE, 'g_staff_v6'), []);
    assert.deepEqual(await ns.setElements(TABLE, 'g_ops_v4'), []);
    assert.equal(await failure(d().call('setAdd', 'admins', '10.8.0.2')), RootErrorCode.UNKNOWN_GROUP);
  });

  it('adds and removes allowed routes, marked with proto 250; refuses the rest', async () => {
    assert.deepEqual(await d().call('routeAdd', { network: '10.9.1.0/24', dev: 'fxs0' }), { changed: true });
    assert.deepEqual(await d().call('routeAdd', { network: '10.9.1.0/24', dev: 'fxs0' }), { changed: false });
    assert.deepEqual(await d().call('routeAdd', { network: '10.9.2.0/24', via: '10.8.0.2', dev: 'fxs0' }), { changed: true });
    assert.deepEqual(await d().call('routeAdd', { network: 'fd00:9:0:1::/64', dev: 'fxs0' }), { changed: true });
    const routes = await ns.routes(250);
    assert.deepEqual(sorted(routes.map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.dev}`)), [
      '10.9.1.0/24 - fxs0',
      '10.9.2.0/24 10.8.0.2 fxs0',
      'fd00:9:0:1::/64 - fxs0',
    ]);

    // a route someone else made is never replaced
    await ns.exec(['ip', 'route', 'add', '10.9.3.0/24', 'dev', 'fxs0']);
    assert.equal(await failure(d().call('routeAdd', { network: '10.9.3.0/24', via: '10.8.0.2', dev: 'fxs0' })), RootErrorCode.ROUTE_CONFLICT);
    assert.deepEqual(await d().call('routeRemove', { network: '10.9.3.0/24', dev: 'fxs0' }), { changed: false });
    assert.match((await ns.exec(['ip', 'route', 'show', '10.9.3.0/24'])).stdout, /10\.9\.3\.0\/24 dev fxs0/);

    for (const network of ['0.0.0.0/0', '::/0', '10.0.0.0/8', '192.168.0.0/24']) {
      assert.equal(await failure(d().call('routeAdd', { network, dev: 'fxs0' })), RootErrorCode.ROUTE_REFUSED, network);
    }
    assert.equal(await failure(d().call('routeAdd', { network: '10.9.4.0/24', dev: 'lo' })), RootErrorCode.UNKNOWN_DEVICE);

    for (const network of ['10.9.1.0/24', '10.9.2.0/24', 'fd00:9:0:1::/64']) {
      assert.deepEqual(await d().call('routeRemove', { network, dev: 'fxs0' }), { changed: true });
    }
    assert.deepEqual(await ns.routes(250), []);
  });

  it('flushes the conntrack entries of an address', async () => {
    const insert = await ns.exec(['conntrack', '-I', '-p', 'udp', '-s', '10.8.0.7', '-d', '10.0.0.9', '--sport', '4000', '--dport', '53', '-t', '120']);
    assert.equal(insert.code, 0, insert.stderr);
    assert.match((await ns.exec(['conntrack', '-L', '-s', '10.8.0.7'])).stderr, /1 flow entries/);
    const result = await d().call<{ deleted: number }>('conntrackFlush', '10.8.0.7');
    assert.equal(result.deleted, 1);
    assert.match((await ns.exec(['conntrack', '-L', '-s', '10.8.0.7'])).stderr, /0 flow entries/);
    assert.deepEqual(await d().call('conntrackFlush', 'fd00:8::7'), { deleted: 0 });
  });

  it('turns a burst of 300 set-adds into a few nft runs, with every element present', async (t) => {
    const burst = addresses('10.20', 300);
    await d().send('desired', { state: { sets: { staff: burst }, routes: [] } });
    const from = d().logs.length;
    const result = await d().send<{ outcomes: Record<string, number>; ms: number }>('burst', { method: 'setAdd', group: 'staff', addresses: burst });
    assert.deepEqual(result.outcomes, { ok: 300 });
    const runs = d()
      .logs.slice(from)
      .filter((l) => l.msg === 'flexscript-root: nft run')
      .map((l) => l.fields.root?.what);
    t.diagnostic(`300 set-adds: ${runs.length} nft run(s) [${runs.join('; ')}], ${result.ms} ms`);
    assert.ok(runs.length >= 1 && runs.length <= 10, `${runs.length} nft runs`);
    assert.deepEqual(sorted(await ns.setElements(TABLE, 'g_staff_v4')), sorted(burst));
  });

  it('lists what it manages', async () => {
    await d().call('routeAdd', { network: '10.9.5.0/24', dev: 'fxs0' });
    const state = await d().call<{ sets: Record<string, string[]>; routes: unknown[] }>('list');
    assert.equal(state.sets.staff?.length, 300);
    assert.deepEqual(state.sets.ops, []);
    assert.deepEqual(state.routes, [{ network: '10.9.5.0/24', dev: 'fxs0', table: 254 }]);
  });

  it('survives kill -9 in the middle of a burst: restarts, reconciles, leaves nothing stale', async (t) => {
    const gone = '10.30.0.1';
    const burst = addresses('10.40', 300);
    // a known start: the set holds `gone` only; routes: one that stays, one the daemon forgot
    await d().call('reconcile', { sets: { staff: [gone] }, routes: [{ network: '10.9.5.0/24', dev: 'fxs0' }] });
    await d().send('desired', { state: { sets: { staff: [gone, ...burst] }, routes: [] } });
    const before = await d().stats();
    const oldPid = d().lastRootPid();
    assert.ok(oldPid);

    // three waves of 100: the kill comes when the first is answered, as the second goes out
    const { seq, answer } = d().sendLater<{ outcomes: Record<string, number> }>('burst', {
      method: 'setAdd',
      group: 'staff',
      addresses: burst,
      waves: 3,
      progressAfter: 100,
    });
    await waitFor('the first wave of the burst', () => d().events.some((e) => e.seq === seq));
    process.kill(oldPid, 'SIGKILL');
    const { outcomes } = await answer;
    t.diagnostic(`burst outcomes around the kill: ${JSON.stringify(outcomes)}`);
    assert.equal((outcomes.ok ?? 0) + (outcomes[RootErrorCode.UNAVAILABLE] ?? 0), 300, JSON.stringify(outcomes));
    await waitFor('the client to notice the exit', async () => (await d().stats()).exits > before.exits);

    // while the stage is down the session of `gone` ends: its remove cannot be applied
    await d().send('desired', { state: { sets: { staff: burst }, routes: [{ network: '10.9.6.0/24', dev: 'fxs0' }] } });
    assert.equal(await failure(d().call('setRemove', 'staff', gone)), RootErrorCode.UNAVAILABLE);
    assert.ok((await ns.setElements(TABLE, 'g_staff_v4')).includes(gone), 'nothing removed it yet');

    await waitFor('the restart and its reconcile', async () => (await d().stats()).reconciles > before.reconciles, 30_000);
    const newPid = d().lastRootPid();
    assert.notEqual(newPid, oldPid);
    assert.deepEqual(sorted(await ns.setElements(TABLE, 'g_staff_v4')), sorted(burst), 'exactly the desired elements: stale one gone, missing ones added');
    assert.deepEqual(
      (await ns.routes(250)).map((r) => r.dst),
      ['10.9.6.0/24'],
    );
    // and it serves again
    await d().call('setAdd', 'ops', '10.8.0.9');
    assert.deepEqual(await ns.setElements(TABLE, 'g_ops_v4'), ['10.8.0.9']);
  });

  it('refuses hostile input with clear codes, runs nothing and changes nothing', async (t) => {
    const stage = new DirectStage(ns, config);
    t.after(() => stage.kill());
    await stage.ready();
    const rulesetBefore = await ns.ruleset();
    const routesBefore = (await ns.exec(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout;
    const logsFrom = stage.logs.length;
    const canary = `/tmp/fxs-pwned-${uniqueSuffix()}`;
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    const cases: [string, string | Buffer, string, number | null][] = [
      ['shell metacharacters', line({ id: 1, action: 'set-add', group: 'staff', address: `10.8.0.2; touch ${canary}` }), RootErrorCode.BAD_ADDRESS, 1],
      ['command substitution', line({ id: 2, action: 'set-add', group: 'staff', address: `$(touch ${canary})` }), RootErrorCode.BAD_ADDRESS, 2],
      ['backquotes', line({ id: 3, action: 'conntrack-flush', address: `\`touch ${canary}\`` }), RootErrorCode.BAD_ADDRESS, 3],
      ['pipe', line({ id: 4, action: 'route-add', network: '10.9.7.0/24', dev: `fxs0 | touch ${canary}` }), RootErrorCode.UNKNOWN_DEVICE, 4],
      ['newline in a value', line({ id: 5, action: 'set-add', group: 'staff', address: '10.8.0.2\nflush ruleset' }), RootErrorCode.BAD_ADDRESS, 5],
      ['nft syntax in an address', line({ id: 6, action: 'set-add', group: 'staff', address: '10.8.0.2 } ; flush ruleset' }), RootErrorCode.BAD_ADDRESS, 6],
      ['nft syntax in a group', line({ id: 7, action: 'set-add', group: 'staff } ; flush ruleset ; {', address: '10.8.0.2' }), RootErrorCode.UNKNOWN_GROUP, 7],
      ['a set name as group', line({ id: 8, action: 'set-add', group: 'g_staff_v4', address: '10.8.0.2' }), RootErrorCode.UNKNOWN_GROUP, 8],
      ['a hostname', line({ id: 9, action: 'set-add', group: 'staff', address: 'localhost' }), RootErrorCode.BAD_ADDRESS, 9],
      ['overlong value', line({ id: 10, action: 'set-add', group: 'staff', address: '1'.repeat(100_000) }), RootErrorCode.TOO_LONG, 10],
      ['default route', line({ id: 11, action: 'route-add', network: '0.0.0.0/0', dev: 'fxs0' }), RootErrorCode.ROUTE_REFUSED, 11],
      ['IPv6 default route', line({ id: 12, action: 'route-add', network: '::/0', dev: 'fxs0' }), RootErrorCode.ROUTE_REFUSED, 12],
      ['"default"', line({ id: 13, action: 'route-add', network: 'default', via: '10.8.0.2' }), RootErrorCode.BAD_NETWORK, 13],
      ['route outside routes.allowed', line({ id: 14, action: 'route-add', network: '10.0.0.0/24', dev: 'fxs0' }), RootErrorCode.ROUTE_REFUSED, 14],
      ['device not in the config', line({ id: 15, action: 'route-add', network: '10.9.7.0/24', dev: 'lo' }), RootErrorCode.UNKNOWN_DEVICE, 15],
      ['table not in the config', line({ id: 16, action: 'route-add', network: '10.9.7.0/24', dev: 'fxs0', table: 255 }), RootErrorCode.UNKNOWN_TABLE, 16],
      ['unknown action', line({ id: 17, action: 'flush-ruleset' }), RootErrorCode.UNKNOWN_ACTION, 17],
      ['exec action', line({ id: 18, action: 'exec', argv: ['/bin/sh', '-c', `touch ${canary}`] }), RootErrorCode.UNKNOWN_ACTION, 18],
      ['unknown field', line({ id: 19, action: 'list', nft: 'flush ruleset' }), RootErrorCode.BAD_REQUEST, 19],
      ['rule in a request', line({ id: 20, action: 'set-add', group: 'staff', address: '10.8.0.2', rule: 'accept' }), RootErrorCode.BAD_REQUEST, 20],
      [
        'reconcile with a bad element',
        line({ id: 21, action: 'reconcile', sets: { staff: ['10.8.0.2', '10.8.0.3;reboot'] }, routes: [] }),
        RootErrorCode.BAD_ADDRESS,
        21,
      ],
      [
        'reconcile with a default route',
        line({ id: 22, action: 'reconcile', sets: {}, routes: [{ network: '0.0.0.0/0', dev: 'fxs0' }] }),
        RootErrorCode.ROUTE_REFUSED,
        22,
      ],
      ['prototype key', '{"id":23,"action":"list","__proto__":{"admin":true}}\n', RootErrorCode.BAD_REQUEST, 23],
      ['not JSON', 'nft flush ruleset\n', RootErrorCode.BAD_JSON, null],
      ['a request split by a raw newline (first half)', '{"id":24,"action":"set-add",\n', RootErrorCode.BAD_JSON, null],
      ['a request split by a raw newline (second half)', '"group":"staff","address":"10.8.0.2"}\n', RootErrorCode.BAD_JSON, null],
      ['binary garbage', Buffer.from([0xff, 0xfe, 0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]), RootErrorCode.BAD_JSON, null],
      ['a JSON array', '[{"id":25,"action":"list"}]\n', RootErrorCode.BAD_REQUEST, null],
      ['no id', line({ action: 'ensure' }), RootErrorCode.BAD_REQUEST, null],
      ['a line over 8 MiB', `${'x'.repeat(9 * 1024 * 1024)}\n`, RootErrorCode.TOO_LONG, null],
    ];
    for (const [what, raw, code, id] of cases) {
      const response = await stage.send(raw);
      assert.equal(response.ok, false, what);
      assert.equal((response.error as { code: string }).code, code, `${what}: ${JSON.stringify(response.error)}`);
      assert.equal(response.id, id, what);
      assert.ok(String((response.error as { message: string }).message).length > 0, what);
    }
    assert.equal(await ns.ruleset(), rulesetBefore, 'the ruleset is byte-identical');
    assert.equal((await ns.exec(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout, routesBefore);
    const ran = stage.logs.slice(logsFrom).filter((l) => ['nft run', 'ip batch', 'conntrack flush'].includes(String(l.msg)));
    assert.deepEqual(ran, [], 'no tool ran');
    await assert.rejects(stat(canary), 'nothing was executed');
    // and the stage still serves
    assert.equal((await stage.send(line({ id: 99, action: 'list' }))).ok, true);
    stage.child.stdin.end();
    assert.equal(await stage.exited, 0, 'exits cleanly when stdin closes');
  });

  it('refuses to start when its config could be changed by someone but root', async (t) => {
    const rulesetBefore = await ns.ruleset();
    const cases: [string, (file: string) => Promise<void>, RegExp][] = [
      ['group-writable config', (f) => chmod(f, 0o664), /writable by group \(mode 0664\)/],
      ['world-writable config', (f) => chmod(f, 0o646), /writable by others \(mode 0646\)/],
      ['config owned by nobody', (f) => chown(f, 65534, 65534), /owned by uid 65534, not root/],
    ];
    for (const [what, spoil, reason] of cases) {
      const sub = join(dir, `bad-${uniqueSuffix()}`);
      await mkdir(sub, { mode: 0o755 });
      const file = join(sub, 'root.yaml');
      await writeFile(file, CONFIG, { mode: 0o644 });
      await spoil(file);
      const stage = new DirectStage(ns, file);
      t.after(() => stage.kill());
      assert.equal(await stage.exited, 78, what);
      const fatal = stage.logs.find((l) => l.level === 'fatal');
      assert.ok(fatal, `${what}: a fatal log line`);
      assert.equal(fatal.code, RootErrorCode.UNTRUSTED_PATH);
      assert.ok(String(fatal.msg).includes(file), `${what}: names the path: ${String(fatal.msg)}`);
      assert.match(String(fatal.msg), reason, what);
      assert.ok(!stage.logs.some((l) => l.msg === 'nft run'), `${what}: ran nothing`);
    }

    // a safe file in a directory others can write to
    const open = join(dir, `open-${uniqueSuffix()}`);
    await mkdir(open);
    await chmod(open, 0o777);
    await writeFile(join(open, 'root.yaml'), CONFIG, { mode: 0o644 });
    const stage = new DirectStage(ns, join(open, 'root.yaml'));
    t.after(() => stage.kill());
    assert.equal(await stage.exited, 78);
    assert.match(String(stage.logs.find((l) => l.level === 'fatal')?.msg), new RegExp(`${open}: writable by group and others`));

    // and an invalid config names FILE:LINE
    const invalid = join(dir, 'invalid.yaml');
    await writeFile(invalid, `${CONFIG}extra: 1\n`, { mode: 0o644 });
    const bad = new DirectStage(ns, invalid);
    t.after(() => bad.kill());
    assert.equal(await bad.exited, 78);
    assert.match(String(bad.logs.find((l) => l.level === 'fatal')?.msg), new RegExp(`${invalid}:\\d+: extra: unknown key`));

    assert.equal(await ns.ruleset(), rulesetBefore);
  });
});

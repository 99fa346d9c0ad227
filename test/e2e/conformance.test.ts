/**
 * The same end-to-end scenarios through both event sources: hook mode (OpenVPN runs the hook
 * client) and management mode (the daemon answers over OpenVPN's management interface).
 * One plugin, both modes, the same results. Where the modes differ, a scenario asks the lab's
 * capabilities (`h.caps`), never the mode; what only one mode has lives in its own file.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { parseDocument } from 'yaml';
import { ask } from '../../src/cli/control.ts';
import type { ControlSession } from '../../src/daemon/control-socket.ts';
import { parseStatus3 } from '../../src/openvpn-management/commands.ts';
import { decisionOf, FLEXSCRIPT, lifecycleOf, readJsonLines, REPO } from '../../src/lab/daemon-process.ts';
import type { OpenVpnClient } from '../../src/lab/openvpn-process.ts';
import { waitFor } from '../../src/lab/wait.ts';
import type { SessionRecord } from '../../src/store/store.ts';
import { hashPassword } from '../../src/util/password-hash.ts';
import { routeFor } from '../fixtures/plugins/recorder.ts';
import { CAPS, MODES, modeLab, type ModeLab } from './mode-lab.ts';

const routeRe = (cn: string) => new RegExp(`${routeFor(cn).replace(/\./g, '\\.')}(,|$)`);
const execFileAsync = promisify(execFile);
const flexscript = (...args: string[]) => spawnSync(process.execPath, [FLEXSCRIPT, ...args], { encoding: 'utf8' });
const ADDRESS_RECORDER = join(REPO, 'test/fixtures/plugins/address-recorder.ts');
const SETUP_FAILS = join(REPO, 'test/fixtures/plugins/setup-fails.ts');
const GROUP_CLAIMER = join(REPO, 'test/fixtures/plugins/group-claimer.ts');
/** A directory group name as directories have them: spaces, quotes, shell syntax, long. */
const HOSTILE_GROUP = `Ops "Team" $(touch /tmp/fxs-grp-pwned); \`id\` ${'g'.repeat(200)}`;

const HOSTILE = [
  'a;touch /tmp/fxs-pwned-1',
  '$(touch /tmp/fxs-pwned-2)',
  '`touch /tmp/fxs-pwned-3`',
  `it's "quoted" both ways`,
  'spaces  and  gaps ',
  'Zoë 雪 Ünïcødé',
  'back\\slash',
  'x'.repeat(64),
];

/** `flexscript status --json` of the lab's config. */
/** The config text with plugins added at the end of its plugin list (wherever that list is in the file). */
const withPlugins = (config: string, ...plugins: Record<string, unknown>[]): string => {
  const doc = parseDocument(config);
  for (const p of plugins) doc.addIn(['plugins'], p);
  return doc.toString();
};

const statusRows = (h: ModeLab): ControlSession[] => {
  const out = flexscript('status', '--config', h.configPath, '--json');
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as ControlSession[];
};

/** A folder the daemon (nobody) can write its SQLite store into. */
async function storeDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fxs-conformance-'));
  await chown(dir, 65534, 65534);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** OpenVPN's own client list (`status 3` through the pass-through socket): common name and client id. */
async function openvpnClients(h: ModeLab): Promise<{ commonName: string; clientId: number }[]> {
  return parseStatus3(await ask(h.passThroughSocket, 'status 3')).clients.map((c) => ({ commonName: c.commonName, clientId: c.clientId }));
}

for (const mode of MODES) {
  const caps = CAPS[mode];
  const needs = (cap: keyof typeof caps) => (caps[cap] ? false : `${mode} mode has no ${cap}`);

  describe(`${mode} mode`, () => {
    test("a plugin's pushed route arrives in the client's PUSH_REPLY", async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'alice', port: h.port });
      await client.waitConnected();
      assert.match(client.pushReply() ?? '', routeRe('alice'));
    });

    test("a plugin's deny fails the client's authentication and the reason is logged", async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'deny-eve', port: h.port });
      await client.waitAuthFailed();
      const denied = await h.daemon.waitForEvent('the deny', decisionOf({ event: 'client-connect', commonName: 'deny-eve', verdict: 'deny' }));
      assert.equal(denied.data.reason, 'recorder refuses deny-eve');
      assert.equal(denied.data.plugin, 'recorder');
      // what the operator reads
      const line = await h.daemon.waitForLog('deny log line', (l) => l.msg === 'client-connect denied' && l.commonName === 'deny-eve');
      assert.equal(line.reason, 'recorder refuses deny-eve');
      assert.equal(line.plugin, 'recorder');
      if (h.caps.disconnectAfterDeny) {
        // OpenVPN runs client-disconnect for a denied deferred client too; plugins must not see it
        await h.daemon.waitForEvent('denied client left', decisionOf({ event: 'client-disconnect', commonName: 'deny-eve', unhandled: 'denied-client-left' }));
      }
      if (h.caps.denyReason) {
        await h.server.waitForLog(/connection rejected: recorder refuses deny-eve, CLI:go away/);
        assert.match(client.log(), /AUTH_FAILED,go away/, 'the client is told why');
      }
      // a later client's whole round trip: a disconnect of deny-eve would have reached plugins by now
      const later = await h.lab.startClient({ commonName: 'later-lee', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await later.waitConnected();
      await later.stop();
      await waitFor('later-lee disconnect record', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'later-lee'));
      assert.deepEqual(
        h.recordsOf('client-disconnect').map((r) => r.commonName),
        ['later-lee'],
      );
    });

    test('learn-address and client-disconnect reach plugins with address, common name, bytes and duration', async (t) => {
      const h = await modeLab(t, mode);
      const client = await h.lab.startClient({ commonName: 'carol', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await client.waitConnected();
      const pushed = /ifconfig (\S+) /.exec(client.pushReply() ?? '')?.[1];
      const learn = await waitFor('learn-address add', () => h.recordsOf('learn-address').find((r) => r.operation === 'add'));
      assert.equal(learn.commonName, 'carol');
      assert.equal(learn.address, pushed);
      assert.equal(learn.sessionKnown, true, 'learn-address found the session by its address');
      await client.stop();
      const gone = await waitFor('disconnect record', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'carol'));
      assert.ok((gone.bytesReceived as number) > 0 && (gone.bytesSent as number) > 0, JSON.stringify(gone));
      assert.equal(typeof gone.duration, 'number');
      assert.equal(gone.stateKept, true, 'state set at connect is there at disconnect');
    });

    test('a plugin that throws denies that client while other clients connect', async (t) => {
      const h = await modeLab(t, mode);
      const [bad, ...good] = await Promise.all(['throw-x', 'dave', 'erin'].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
      await bad!.waitAuthFailed();
      await Promise.all(good.map((c) => c.waitConnected()));
      const failed = await h.daemon.waitForEvent(
        'the failed call',
        (e) => e.channel === 'plugin-call' && e.data.plugin === 'recorder' && e.data.outcome === 'error',
      );
      assert.equal(failed.channel === 'plugin-call' && failed.data.failure, 'recorder exploded on purpose');
      const denied = await h.daemon.waitForEvent('the deny', decisionOf({ event: 'client-connect', commonName: 'throw-x', verdict: 'deny' }));
      assert.equal(denied.data.reason, 'plugin recorder on client-connect: recorder exploded on purpose');
      assert.equal(denied.data.plugin, 'recorder');
      const late = await h.lab.startClient({ commonName: 'frank', port: h.port });
      await late.waitConnected();
    });

    test('a plugin that never answers leads to a deny within its time limit, while others connect', async (t) => {
      const h = await modeLab(t, mode, { pluginTimeout: '2s' });
      const hung = await h.lab.startClient({ commonName: 'hang-forever', port: h.port });
      const fine = await h.lab.startClient({ commonName: 'quinn', port: h.port });
      await fine.waitConnected();
      await hung.waitAuthFailed();
      await h.daemon.waitForEvent('the timed-out call', (e) => e.channel === 'plugin-call' && e.data.plugin === 'recorder' && e.data.outcome === 'timeout');
      const denied = await h.daemon.waitForEvent('the deny', decisionOf({ event: 'client-connect', commonName: 'hang-forever', verdict: 'deny' }));
      assert.equal(denied.data.reason, 'plugin recorder on client-connect: did not finish within 2000 ms');
      assert.equal(denied.data.plugin, 'recorder');
      const ms = denied.data.ms ?? 0;
      assert.ok(ms >= 2000 && ms < 5000, `denied after ${ms} ms`);
      if (h.caps.denyReason) await h.server.waitForLog(/connection rejected: plugin recorder on client-connect: did not finish within 2000 ms/);
    });

    test('hostile common names connect, reach plugins as exactly those strings, and nothing runs', async (t) => {
      const h = await modeLab(t, mode);
      const clients = await Promise.all(HOSTILE.map((commonName) => h.lab.startClient({ commonName, port: h.port })));
      await Promise.all(clients.map((c) => c.waitConnected()));
      const seen = h.recordsOf('client-connect');
      assert.deepEqual(seen.map((r) => r.commonName).sort(), [...HOSTILE].sort());
      for (const r of seen) assert.equal(r.envCommonName, r.commonName);
      for (const c of clients) assert.match(c.pushReply() ?? '', routeRe(c.commonName));
      for (const n of [1, 2, 3]) assert.equal(existsSync(`/tmp/fxs-pwned-${n}`), false);
    });

    test('50 clients connecting at once all get their own answer', async (t) => {
      const h = await modeLab(t, mode);
      const clients = await Promise.all(
        Array.from({ length: 50 }, (_, n) => h.lab.startClient({ commonName: n % 10 === 3 ? `deny-${n}` : `storm-${n}`, port: h.port })),
      );
      await Promise.all(
        clients.map(async (c) => {
          if (c.commonName.startsWith('deny-')) return c.waitAuthFailed(120_000);
          await c.waitConnected(120_000);
          assert.match(c.pushReply() ?? '', routeRe(c.commonName), c.commonName);
        }),
      );
      assert.equal(h.recordsOf('client-connect').length, 50);
    });

    test('passwords are checked: the right one connects, a wrong one is refused, none is logged', async (t) => {
      const h = await modeLab(t, mode, {
        events: ['user-pass-verify', 'client-connect', 'client-disconnect'],
        passwords: true,
        recorder: ['password: s3cret pass'],
      });
      const good = await h.lab.startClient({ commonName: 'kim', port: h.port, username: 'kim', password: 's3cret pass' });
      const bad = await h.lab.startClient({ commonName: 'lou', port: h.port, username: 'lou', password: 'guess' });
      await good.waitConnected();
      await bad.waitAuthFailed();
      const denied = await h.daemon.waitForEvent('auth deny', decisionOf({ event: 'user-pass-verify', verdict: 'deny' }));
      assert.equal(denied.data.commonName, 'lou');
      assert.equal(denied.data.reason, 'wrong password for lou');
      await h.daemon.waitForEvent('kim accepted', decisionOf({ event: 'user-pass-verify', commonName: 'kim', verdict: 'accept' }));
      assert.ok(!JSON.stringify(h.daemon.logs()).includes('s3cret'), 'passwords are never logged');
      assert.ok(!JSON.stringify(h.daemon.events()).includes('s3cret'), 'nor published');
    });

    test("groups: the users file's group gets its client-config push and is recorded with the session; a group a non-verifying plugin claims counts for nothing", async (t) => {
      rmSync('/tmp/fxs-grp-pwned', { force: true });
      const dir = await storeDir(t);
      const usersFile = join(dir, 'users');
      await writeFile(usersFile, `kim:${await hashPassword('Kim-Pa55')}:vpn-admins\nlou:${await hashPassword('Lou-Pa55')}\n`, { mode: 0o640 });
      await chown(usersFile, 65534, 65534);
      const db = join(dir, 'accounting.db');
      const h = await modeLab(t, mode, {
        events: ['user-pass-verify', 'client-connect', 'client-disconnect', 'learn-address'],
        passwords: true,
        // two password hashes at once on a busy machine: more than the lab's 1 s
        pluginTimeout: '10s',
        control: true,
        extraConfig: ['store:', `  sqlite: ${db}`, 'groups:', '  by-rule: { common-names: [lou-laptop] }'],
        plugins: [
          '  - use: password-auth',
          `    options: { file: ${usersFile} }`,
          // claims vpn-admins for everyone at user-pass-verify without verifying anything
          `  - path: ${GROUP_CLAIMER}`,
          `    options: { claimed: vpn-admins, connect-group: ${JSON.stringify(HOSTILE_GROUP)} }`,
        ],
        pluginsAfter: [
          '  - use: client-config',
          '    options:',
          '      groups:',
          '        admins: { members: { groups: [vpn-admins] }, push: ["route 10.30.0.0 255.255.0.0"] }',
          `        hostile: { members: { groups: [${JSON.stringify(HOSTILE_GROUP)}] }, push: ["route 10.31.0.0 255.255.0.0"] }`,
          '        ruled: { members: { groups: [by-rule] }, push: ["route 10.32.0.0 255.255.0.0"] }',
          '  - use: accounting',
        ],
      });
      const kim = await h.lab.startClient({ commonName: 'kim-laptop', port: h.port, username: 'kim', password: 'Kim-Pa55' });
      const lou = await h.lab.startClient({ commonName: 'lou-laptop', port: h.port, username: 'lou', password: 'Lou-Pa55' });
      await Promise.all([kim.waitConnected(), lou.waitConnected()]);
      assert.match(kim.pushReply() ?? '', /route 10\.30\.0\.0 255\.255\.0\.0/, "kim's users-file group gets the admins push");
      assert.doesNotMatch(lou.pushReply() ?? '', /route 10\.30\.0\.0/, 'lou is no admin: the claim of a plugin that verifies nothing does not count');
      assert.doesNotMatch(kim.pushReply() ?? '', /route 10\.32\.0\.0/);
      assert.match(lou.pushReply() ?? '', /route 10\.32\.0\.0/, "the static rule's group");
      for (const c of [kim, lou]) assert.match(c.pushReply() ?? '', /route 10\.31\.0\.0/, 'a hostile group name added at connect is matched exactly');
      const sessions = (): SessionRecord[] => {
        const out = flexscript('sessions', '--config', h.configPath, '--json', '--open');
        assert.equal(out.status, 0, out.stderr);
        return JSON.parse(out.stdout) as SessionRecord[];
      };
      const rows = await waitFor('both recorded', () => {
        const r = sessions();
        return r.length === 2 && r;
      });
      const groupsOf = (cn: string) => rows.find((r) => r.commonName === cn)?.groups;
      assert.deepEqual(groupsOf('kim-laptop'), ['vpn-admins', HOSTILE_GROUP]);
      assert.deepEqual(groupsOf('lou-laptop'), ['by-rule', HOSTILE_GROUP]);
      assert.equal(rows.find((r) => r.commonName === 'kim-laptop')?.username, 'kim');
      const accepted = await h.daemon.waitForEvent('kim connected', decisionOf({ event: 'client-connect', commonName: 'kim-laptop', verdict: 'accept' }));
      assert.deepEqual(accepted.data.groups, ['vpn-admins', HOSTILE_GROUP], 'the decision feed carries the groups');
      assert.deepEqual(statusRows(h).find((r) => r.commonName === 'kim-laptop')?.groups, ['vpn-admins', HOSTILE_GROUP], 'and so does flexscript status');
      assert.equal(existsSync('/tmp/fxs-grp-pwned'), false, 'nothing of the group name ran');
    });

    test('tls-verify waits for the daemon and its deny refuses the client', { skip: needs('tlsVerify') }, async (t) => {
      const h = await modeLab(t, mode, { events: ['tls-verify', 'client-connect', 'client-disconnect'] });
      const refused = await h.lab.startClient({ commonName: 'tlsdeny-zed', port: h.port });
      const fine = await h.lab.startClient({ commonName: 'yolanda', port: h.port });
      await fine.waitConnected();
      await h.daemon.waitForEvent('tls-verify deny', decisionOf({ event: 'tls-verify', commonName: 'tlsdeny-zed', verdict: 'deny' }));
      await h.server.waitForLog(/VERIFY SCRIPT ERROR: depth=0, CN=tlsdeny-zed/);
      // the refused client's handshake failed on the server: it cannot have completed since
      assert.ok(!refused.log().includes('Initialization Sequence Completed'));
      const depths = h
        .recordsOf('tls-verify')
        .filter((r) => r.commonName === 'yolanda')
        .map((r) => r.depth);
      assert.deepEqual(depths, [0], 'the client certificate is checked at depth 0 (the CA at depth 1 has its own CN)');
    });

    test('a plugin that needs time announces a pending authentication and then decides', { skip: needs('pendingAuth') }, async (t) => {
      const h = await modeLab(t, mode, { pluginTimeout: '1s' });
      const client = await h.lab.startClient({ commonName: 'slow-sue', port: h.port });
      await client.waitConnected();
      await h.server.waitForLog(/MANAGEMENT: CMD 'client-pending-auth \d+ \d+ "CR_TEXT:E:Approve the login on your phone" 30'/);
      const decided = await h.daemon.waitForEvent('accept', decisionOf({ event: 'client-connect', commonName: 'slow-sue', verdict: 'accept' }));
      const ms = decided.data.ms ?? 0;
      assert.ok(ms > 2000, `decided after ${ms} ms, past the 1 s limit it extended`);
      // OpenVPN took the notice: it passed it on to the client
      assert.match(
        client.log(),
        /AUTH_PENDING received[^\n]*\n[^\n]*Info command was pushed by server \('CR_TEXT:E:Approve the login on your phone'\)/,
        'OpenVPN took client-pending-auth and passed the notice on',
      );
      assert.match(client.pushReply() ?? '', routeRe('slow-sue'));
    });

    test('with the daemon stopped a connecting client is refused, OpenVPN keeps serving, and clients connect again once it is back', async (t) => {
      // a short hand-window: without the daemon no one answers OpenVPN's wait for a decision
      const h = await modeLab(t, mode, { extraServer: ['hand-window 10'] });
      const first = await h.lab.startClient({ commonName: 'gina', port: h.port });
      await first.waitConnected();
      await h.daemon.stop();
      // it retries after a refusal, so it can get in once the daemon is back
      const refused = await h.lab.startClient({ commonName: 'hank', port: h.port, extraConfig: ['hand-window 10', 'auth-retry nointeract'] });
      if (h.caps.refusedAtOnceWhileDaemonDown) {
        await waitFor('hank refused', () => refused.log().includes('AUTH_FAILED'));
        await h.server.waitForLog(/flexscript-hook\[client-connect\]: daemon not running .*; denying \(on-unreachable: deny\)/);
      } else {
        // OpenVPN keeps the client waiting for an answer, and refuses it when the hand-window ends
        await h.server.waitForLog(/SENT CONTROL \[hank\]: 'AUTH_FAILED'/, 60_000);
      }
      assert.ok(!refused.log().includes('Initialization Sequence Completed'), 'no client got in without the daemon');
      assert.equal(refused.pushReply(), undefined);
      assert.ok(h.server.running, 'OpenVPN is still running');
      assert.ok(!first.log().includes('SIGUSR1') && !first.log().includes('SIGTERM'), 'the connected client stayed');
      await h.restartDaemon();
      const after = await h.lab.startClient({ commonName: 'ivy', port: h.port });
      await after.waitConnected();
      assert.match(after.pushReply() ?? '', routeRe('ivy'));
      await waitFor('hank in at last', () => refused.log().includes('Initialization Sequence Completed'), { timeoutMs: 90_000, intervalMs: 250 });
      assert.match(refused.pushReply() ?? '', routeRe('hank'));
      assert.ok(!first.log().includes('SIGUSR1') && !first.log().includes('SIGTERM'), 'the connected client stayed throughout');
    });

    test('OpenVPN killed while the daemon runs: the daemon notices, its sessions end as missed, and a restarted OpenVPN serves new clients', async (t) => {
      const h = await modeLab(t, mode, { control: true });
      const before = await h.lab.startClient({ commonName: 'before', port: h.port });
      await before.waitConnected();
      await waitFor('before is live', () => statusRows(h).some((r) => r.commonName === 'before'));
      // a crash: OpenVPN reports no disconnect, so the daemon must notice on its own
      await h.restartServer('SIGKILL');
      const after = await h.lab.startClient({ commonName: 'after', port: h.port });
      await after.waitConnected();
      assert.match(after.pushReply() ?? '', routeRe('after'));
      const missed = await waitFor('missed disconnect', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'before'));
      assert.equal(missed.missed, true);
      // the client itself reconnects to the new OpenVPN: then it is live once, under its new connection
      await waitFor('only the clients of the new OpenVPN are live', () => {
        const names = statusRows(h)
          .map((r) => r.commonName)
          .sort();
        return JSON.stringify(names) === JSON.stringify(['after', 'before']) || JSON.stringify(names) === JSON.stringify(['after']);
      });
      assert.equal(h.recordsOf('client-disconnect').filter((r) => r.commonName === 'before').length, 1, 'the lost session ended once');
    });

    test("the daemon restarted while clients are connected rebuilds its sessions from OpenVPN's list", async (t) => {
      const h = await modeLab(t, mode, { control: true, statusFile: true });
      const clients = await Promise.all(
        ['rita', 'sam'].map((commonName) => h.lab.startClient({ commonName, port: h.port, extraConfig: ['explicit-exit-notify 1'] })),
      );
      await Promise.all(clients.map((c) => c.waitConnected()));
      // hook mode: OpenVPN rewrites its status file every second
      if (existsSync(h.statusFile))
        await waitFor('both in the status file', () => (readFileSync(h.statusFile, 'utf8').match(/^CLIENT_LIST\t(rita|sam)\t/gm) ?? []).length === 2);
      await h.restartDaemon();
      await waitFor('both rebuilt', () => statusRows(h).length === 2);
      const rows = statusRows(h);
      assert.deepEqual(rows.map((r) => r.commonName).sort(), ['rita', 'sam']);
      assert.ok(
        rows.every((r) => r.instance === 'e2e' && /^10\./.test(r.vpnAddress ?? '')),
        JSON.stringify(rows),
      );
      const table = flexscript('status', '--config', h.configPath);
      assert.match(table.stdout, /^INSTANCE +NAME +USER +VPN ADDRESS +REAL ADDRESS +SINCE \([^)]+\) +BYTES IN +BYTES OUT\ne2e +(rita|sam) /);
      // a disconnect after the restart reaches plugins for the rebuilt session
      await clients[0]!.stop();
      const gone = await waitFor('disconnect after restart', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'rita'));
      assert.equal(gone.missed, false);
      assert.ok((gone.bytesSent as number) > 0);
      await waitFor('rita gone from status', () => statusRows(h).length === 1);
      assert.equal(statusRows(h)[0]?.commonName, 'sam');
    });

    test('flexscript kill NAME disconnects that client and only that one, and her record ends as killed (also after a daemon restart)', {
      skip: needs('killClient'),
    }, async (t) => {
      const db = join(await storeDir(t), 'accounting.db');
      const h = await modeLab(t, mode, { passThrough: true, extraConfig: ['store:', `  sqlite: ${db}`], plugins: ['  - use: accounting'] });
      const [victim, bystander] = await Promise.all(['mallory', 'trent'].map((commonName) => h.lab.startClient({ commonName, port: h.port })));
      await Promise.all([victim!.waitConnected(), bystander!.waitConnected()]);
      const before = await openvpnClients(h);
      const idOf = (list: typeof before, cn: string) => list.find((c) => c.commonName === cn)?.clientId;
      // the daemon restarts: her session is rebuilt from OpenVPN's list, and is still her record's
      await h.restartDaemon();
      const kill = await waitFor('mallory rebuilt and killed', () => {
        const k = flexscript('kill', 'mallory', '--config', h.configPath);
        return k.status === 0 && k;
      });
      assert.match(kill.stdout, /disconnected 1 session\(s\) of "mallory"/);
      await victim!.waitForLog(/SIGTERM|client-kill|Connection reset|restart/i);
      await waitFor('mallory leaves', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'mallory'));
      // OpenVPN has let go of mallory's connection (she reconnects as a new one): a kill of trent,
      // sent with hers, would have been carried out too
      await waitFor('mallory gone from OpenVPN', async () => idOf(await openvpnClients(h), 'mallory') !== idOf(before, 'mallory'));
      assert.equal(idOf(await openvpnClients(h), 'trent'), idOf(before, 'trent'), 'trent is still connected, on the same connection');
      assert.ok(!h.recordsOf('client-disconnect').some((r) => r.commonName === 'trent'));
      // the history says who ended her session: the kill, not the client
      const records = () => {
        const out = flexscript('sessions', '--config', h.configPath, '--json');
        return out.status === 0 ? (JSON.parse(out.stdout) as SessionRecord[]) : [];
      };
      const ended = await waitFor("mallory's record closed", () => records().find((r) => r.commonName === 'mallory' && r.endedAt !== undefined));
      assert.equal(ended.endReason, 'killed');
      assert.equal(records().find((r) => r.commonName === 'trent')?.endReason, undefined, "trent's record is open");
      const unknown = flexscript('kill', 'nobody-here', '--config', h.configPath);
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /no live client named "nobody-here"/);
    });

    test('allow-kill: false refuses flexscript kill and the client stays', { skip: needs('passThrough') }, async (t) => {
      const h = await modeLab(t, mode, { passThrough: true, allowKill: false });
      const client = await h.lab.startClient({ commonName: 'oscar', port: h.port });
      await client.waitConnected();
      const oscarId = async () => (await openvpnClients(h)).find((c) => c.commonName === 'oscar')?.clientId;
      const before = await oscarId();
      assert.notEqual(before, undefined, 'OpenVPN lists oscar');
      const kill = flexscript('kill', 'oscar', '--config', h.configPath);
      assert.equal(kill.status, 1, kill.stdout);
      assert.match(kill.stderr, /killing clients is not allowed here \(management\.pass-through\.allow-kill\)/);
      assert.deepEqual(await ask(h.passThroughSocket, `client-kill ${before}`), [
        'ERROR: killing clients is not allowed here (management.pass-through.allow-kill)',
      ]);
      // read-only commands still pass: OpenVPN answers status after the refused kills
      assert.equal(await oscarId(), before, 'OpenVPN still lists oscar');
      // a kill carried out would have reached oscar and the plugins by the time a later client
      // has made its whole round trip
      const later = await h.lab.startClient({ commonName: 'later-lee', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await later.waitConnected();
      await later.stop();
      await h.daemon.waitForEvent('later-lee left', decisionOf({ event: 'client-disconnect', commonName: 'later-lee' }));
      assert.equal(await oscarId(), before, 'oscar is still connected, on the same connection');
      assert.ok(!client.log().includes('SIGTERM') && !client.log().includes('SIGUSR1'), 'the client was not told to go');
      assert.deepEqual(
        h.recordsOf('client-disconnect').map((r) => r.commonName),
        ['later-lee'],
      );
    });

    test('SIGHUP reloads the plugins while clients stay; a plugin whose setup fails keeps the running ones and is reported', async (t) => {
      const h = await modeLab(t, mode);
      const addresses = join(h.lab.dir, 'work', 'addresses.jsonl');
      const first = await h.lab.startClient({ commonName: 'alice', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await first.waitConnected();
      const original = readFileSync(h.configPath, 'utf8');
      // a new plugin after the recorder: it serves the clients that come after the reload
      const withAddresses = withPlugins(original, { path: ADDRESS_RECORDER, options: { file: addresses } });
      writeFileSync(h.configPath, withAddresses);
      h.daemon.signal('SIGHUP');
      const reloaded = await h.daemon.waitForEvent('the reload', (e) => lifecycleOf('reloaded')(e) || lifecycleOf('reload-failed')(e));
      assert.deepEqual(reloaded.data, { what: 'reloaded', plugins: ['recorder', 'address-recorder'] });
      const second = await h.lab.startClient({ commonName: 'bob', port: h.port });
      await second.waitConnected();
      assert.match(second.pushReply() ?? '', routeRe('bob'), 'the reloaded recorder serves');
      await waitFor('bob recorded by the new plugin', () => existsSync(addresses) && readJsonLines(addresses).some((r) => r.commonName === 'bob'));

      // a plugin whose setup fails: the reload is refused, the running config and plugins stay
      writeFileSync(h.configPath, withPlugins(withAddresses, { path: SETUP_FAILS }));
      h.daemon.signal('SIGHUP');
      const refused = await h.daemon.waitForEvent('reload refused', lifecycleOf('reload-failed'));
      assert.ok(
        refused.data.problems.some((p) => p.includes('setup-fails setup failed: setup-fails refuses to start on purpose')),
        JSON.stringify(refused.data.problems),
      );
      const third = await h.lab.startClient({ commonName: 'carol', port: h.port });
      await third.waitConnected();
      assert.match(third.pushReply() ?? '', routeRe('carol'));
      await waitFor('carol recorded by the running plugins', () => readJsonLines(addresses).some((r) => r.commonName === 'carol'));
      assert.equal(h.daemon.events().filter(lifecycleOf('reloaded')).length, 1, 'the refused reload swapped nothing');
      // the clients from before both reloads are still served: alice's disconnect reaches plugins
      await first.stop();
      const gone = await waitFor('alice left', () => h.recordsOf('client-disconnect').find((r) => r.commonName === 'alice'));
      assert.equal(gone.missed, false);
      assert.ok(h.server.running);
    });

    test("flexscript sessions reads a running daemon's SQLite store while the daemon writes it, and logs no error", async (t) => {
      const dir = await storeDir(t);
      const db = join(dir, 'accounting.db');
      const h = await modeLab(t, mode, { extraConfig: ['store:', `  sqlite: ${db}`], pluginsAfter: ['  - use: accounting'] });
      const sessions = (...args: string[]): SessionRecord[] => {
        const out = flexscript('sessions', '--config', h.configPath, '--json', ...args);
        assert.equal(out.status, 0, out.stderr);
        return JSON.parse(out.stdout) as SessionRecord[];
      };
      const sessionsAsync = async (...args: string[]): Promise<SessionRecord[]> => {
        const { stdout } = await execFileAsync(process.execPath, [FLEXSCRIPT, 'sessions', '--config', h.configPath, '--json', ...args], { encoding: 'utf8' });
        return JSON.parse(stdout) as SessionRecord[];
      };
      const alice = await h.lab.startClient({ commonName: 'alice', port: h.port, extraConfig: ['explicit-exit-notify 1'] });
      await alice.waitConnected();
      await waitFor('alice recorded', () => sessions().find((r) => r.commonName === 'alice'));
      // read again and again while a burst of clients is being recorded: every read succeeds
      const burst: Promise<OpenVpnClient>[] = Array.from({ length: 10 }, (_, i) => h.lab.startClient({ commonName: `storm-${i}`, port: h.port }));
      const counts: number[] = [];
      const all = await waitFor(
        'every client recorded, read by flexscript sessions',
        async () => {
          const rows = await sessionsAsync('--open');
          counts.push(rows.length);
          return rows.length === 11 && rows;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      assert.deepEqual(
        counts,
        [...counts].sort((a, b) => a - b),
        'records only ever grew',
      );
      await Promise.all((await Promise.all(burst)).map((c) => c.waitConnected()));
      assert.ok(all.every((r) => r.instance === 'e2e' && r.endedAt === undefined));
      // management mode learns a client's address just after its connect is recorded
      await waitFor('every record has its VPN address', () => sessions('--open').every((r) => /^10\./.test(r.vpnAddress ?? '')));
      await alice.stop();
      const closed = await waitFor('alice closed', () => sessions('--user', 'alice').find((r) => r.endedAt !== undefined));
      assert.equal(closed.endReason, 'disconnect');
      // reading took nothing from the daemon: it still records, and every file is still its own
      const late = await h.lab.startClient({ commonName: 'late', port: h.port });
      await late.waitConnected();
      await waitFor('late recorded', () => sessions('--user', 'late').length === 1);
      for (const name of readdirSync(dir)) assert.equal(statSync(join(dir, name)).uid, 65534, `${name} belongs to the daemon's user`);
      assert.deepEqual(
        h.daemon.events().filter((e) => e.channel === 'plugin-call' && e.data.outcome !== 'ok'),
        [],
        'every plugin call succeeded',
      );
      // what the operator reads
      assert.deepEqual(
        h.daemon.logs().filter((l) => (l.level ?? 0) >= 50),
        [],
        'the daemon logged no error',
      );
    });
  });
}

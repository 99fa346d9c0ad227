/**
 * @module hook-server
 * The daemon's side of hook mode. The hook client writes an event into DIR/spool and rings
 * DIR/ring with the file's name; this reads the file, removes it, runs the event through the
 * daemon (its event sink) and answers the way the hook asked: deferred client-connect and user-pass-verify
 * through OpenVPN's own files, waiting hooks through their reply FIFO, notifications not at all.
 * Files left by hooks while the daemon was down are processed at start, so nothing is lost.
 *
 * Challenges (a plugin's `challenge()` on user-pass-verify): OpenVPN reads `auth_pending_file`
 * only when the user-pass-verify hook returns, so the hook runs in `ask` mode: it waits on its
 * reply FIFO while the plugins run, and returns (deferred) when the daemon answers `2`, after
 * writing either the verdict or the question (`crtext`, `CR_TEXT:...`). The client's answer
 * comes back through OpenVPN's `client-crresponse` hook and reaches the waiting plugin; the
 * verdict then goes to `auth_control_file` as for any deferred user-pass-verify.
 *
 * Speed: OpenVPN (2.6 without async-push) looks at a deferred answer only when it next handles
 * that client, about a second later (the client's first PUSH_REQUEST or the client's timer),
 * and a hook that is not waiting has already returned. So deferred and notified events are
 * gathered for RING_BATCH_MS and handled together: fewer wake-ups, and a burst reaches the
 * root stage at once (fewer nft runs). That leaves more CPU to OpenVPN, whose single loop is
 * what a storm waits on. A waiting hook blocks OpenVPN and is handled at once. The files are small and local
 * (a spool file, OpenVPN's answer files), so they are read and written synchronously: cheaper
 * than a round trip through the thread pool for each.
 */
import { closeSync, constants, fstatSync, ftruncateSync, promises as fs, lstatSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { ErrorCode, errorMessage, FlexscriptError } from '../../errors.ts';
import { LineSplitter } from '../../util/line-splitter.ts';
import { connectionString, hookKey, type ConnectionKey, type ListedClient } from '../../core/client.ts';
import type { Challenge, Decision, PendingAuth, RunOptions } from '../../core/decision.ts';
import { REBUILD_AGAIN_MS, type EventSink, type KeyOf, type SourceAdapter } from '../../events/source.ts';
import { isEventName } from '../../events/event-map.ts';
import { parseCrResponse } from '../../events/parse-event.ts';
import type { HookConfig } from '../../config/config-schema.ts';
import type { Logger } from '../../logger.ts';
import { parseSpoolFile, type SpoolEvent } from './spool-file.ts';
import { readSpoolBytes, SpoolEntryRefused } from './spool-read.ts';
import { rebuildFromStatusFile, statusFileList } from './status-file.ts';
import { livePid, prepareRuntimeDir, removePidFile, runtimePaths, writePidFile, type RuntimePaths } from './runtime-dir.ts';

/** Spool names the hook makes: its pid, or pid.n after a collision. Anything else is ignored. */
const SPOOL_NAME = /^\d{1,10}(\.\d{1,2})?$/;
/** An incomplete spool file older than this was left by a hook that died mid-write. */
const STALE_PARTIAL_MS = 60_000;
/** What the hook writes last; a file without it is incomplete. */
const END_MARK = Buffer.from('#end\n');
/** How long deferred and notified events are gathered (see the module comment). */
const RING_BATCH_MS = 50;
/** The longest line read from the ring; a spool file's name is far shorter. */
const RING_LINE_BYTES = 4096;

export interface HookServerOptions {
  readonly config: HookConfig;
  readonly instance: string;
  /** Where events go. */
  readonly sink: EventSink;
  readonly log: Logger;
  /** Called once the live sessions are known after start, with the time the list was taken. */
  readonly onRebuilt?: (asOf: number) => void;
}

/** Hook mode names a connection by the client's real address and port (and common name). */
const keyOf: KeyOf = (e) => hookKey(e);

/** The auth_pending_file method OpenVPN checks against the client's IV_SSO, by the notice's prefix. */
function pendingMethod(extra: string): string | undefined {
  if (extra.startsWith('WEB_AUTH:')) return 'webauth';
  if (extra.startsWith('OPEN_URL:')) return 'openurl';
  if (extra.startsWith('CR_TEXT:')) return 'crtext';
  return undefined;
}

/** The client a challenge waits for: its connection (instance, real address and port, common name). */
function challengeKey(instance: string, c: { realAddress?: string; realPort?: number; commonName: string }): string {
  return connectionString({ instance, commonName: c.commonName, realAddress: c.realAddress, realPort: c.realPort });
}

/**
 * Writes into a file OpenVPN created; never creates one (OpenVPN may have given up on it).
 * Overwrites in place and cuts only a longer rest: truncating a file that holds data (the
 * deferred file holds the hook's `2`) makes ext4 flush it on close, about a millisecond each.
 */
function writeExisting(path: string, data: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    const bytes = Buffer.from(data);
    writeSync(fd, bytes, 0, bytes.length, 0);
    if (fstatSync(fd).size > bytes.length) ftruncateSync(fd, bytes.length);
  } finally {
    closeSync(fd);
  }
}

function openvpnFile(env: Record<string, string>, name: string): string {
  const path = env[name];
  if (!path || !isAbsolute(path)) throw new Error(`${name} is missing from the environment`);
  return path;
}

/** Removes a spool entry (a link itself, never its target); a directory planted there stays. */
function discard(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // not a file: nothing the hook made, and nothing the daemon reads again but to refuse it
  }
}

/** Whether a process exists (EPERM: it does, as another user's). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class HookServer implements SourceAdapter {
  readonly paths: RuntimePaths;
  /** Spool files must belong to this user: OpenVPN's, which the daemon shares in hook mode. */
  readonly #uid = process.getuid!();
  #ring: Socket | undefined;
  #pending = new Set<Promise<void>>();
  #closed = false;
  #again: NodeJS.Timeout | undefined;
  #batch: string[] = [];
  #batchTimer: NodeJS.Timeout | undefined;
  /** The OpenVPN processes whose hooks were seen (`daemon_pid/daemon_start_time`). */
  #openvpns = new Set<string>();
  /** Challenges waiting for the client's client-crresponse, by challengeKey: one per client. */
  readonly #challenges = new Map<string, (answer: string | Error) => void>();

  constructor(private readonly options: HookServerOptions) {
    this.paths = runtimePaths(options.config.dir);
  }

  async start(): Promise<void> {
    const { config, log } = this.options;
    const other = livePid(this.paths);
    if (other !== undefined && other !== process.pid) throw new Error(`another daemon (pid ${other}) serves ${this.paths.dir}`);
    prepareRuntimeDir(this.paths, config.mode, config.group);
    // A waiting hook whose daemon died will have timed out; its FIFO is useless now.
    for (const name of readdirSync(this.paths.reply)) await fs.rm(join(this.paths.reply, name), { force: true });
    // Read-write so the pipe never reports end-of-file when the last hook closes it.
    const fd = openSync(this.paths.ring, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    if (!fstatSync(fd).isFIFO()) {
      closeSync(fd);
      throw new Error(`${this.paths.ring} is not a FIFO`);
    }
    const ring = new Socket({ fd, readable: true, writable: false });
    this.#ring = ring;
    // names are short: a longer line is garbage on the ring, dropped up to its newline
    const names = new LineSplitter(RING_LINE_BYTES, { afterTooLong: 'skip' });
    ring.on('data', (chunk: Buffer) => {
      names.split(chunk, {
        line: (name) => {
          if (this.#isWaiting(name)) this.#track(this.#process(name));
          else this.#batch.push(name);
        },
      });
      if (this.#batch.length > 0 && !this.#batchTimer) this.#batchTimer = setTimeout(() => this.#flushBatch(), RING_BATCH_MS);
    });
    ring.on('error', (err) => log.error({ err: errorMessage(err) }, 'ring pipe error'));
    writePidFile(this.paths, config.mode);
    const statusFile = config['status-file'];
    let asOf = Date.now();
    // a snapshot OpenVPN wrote after this start: one taken before may miss a client's address
    if (statusFile) asOf = await rebuildFromStatusFile(statusFile, this.options.instance, this.options.sink, log, Date.now());
    // Disconnects spooled while the daemon was down say who left: apply them before anyone
    // judges which sessions were missed. New events are served meanwhile.
    void this.#processLeftovers().then(() => {
      if (!this.#closed) this.options.onRebuilt?.(asOf);
    });
    if (statusFile) {
      // a client answered just before the restart may be missing from that snapshot: look again
      this.#again = setTimeout(() => {
        void rebuildFromStatusFile(statusFile, this.options.instance, this.options.sink, log).then((t) => {
          if (!this.#closed) this.options.onRebuilt?.(t);
        });
      }, REBUILD_AGAIN_MS).unref();
    }
    log.info({ dir: this.paths.dir }, 'hook server listening');
  }

  /** Stops reading new events and waits for the ones in progress to be answered. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#again);
    removePidFile(this.paths);
    this.#ring?.destroy();
    this.#flushBatch();
    for (const settle of [...this.#challenges.values()]) settle(new Error('the daemon stopped before the client answered'));
    await Promise.allSettled([...this.#pending]);
  }

  /** The clients OpenVPN's status file lists now (with byte counts); none without a status file. */
  async liveClients(): Promise<readonly ListedClient[]> {
    const file = this.options.config['status-file'];
    return file ? statusFileList(await fs.readFile(file, 'utf8'), this.options.instance).clients : [];
  }

  /** A waiting hook made its reply FIFO before ringing. */
  #isWaiting(name: string): boolean {
    return SPOOL_NAME.test(name) && lstatSync(join(this.paths.reply, name), { throwIfNoEntry: false }) !== undefined;
  }

  #flushBatch(): void {
    clearTimeout(this.#batchTimer);
    this.#batchTimer = undefined;
    for (const name of this.#batch.splice(0)) this.#track(this.#process(name));
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** Starts every event left in the spool; resolves when all of them are handled. */
  async #processLeftovers(): Promise<void> {
    const entries = readdirSync(this.paths.spool)
      .filter((n) => SPOOL_NAME.test(n))
      .map((n) => ({ n, mtime: lstatSync(join(this.paths.spool, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
      .sort((a, b) => a.mtime - b.mtime);
    if (entries.length > 0) this.options.log.info({ count: entries.length }, 'processing events queued while the daemon was down');
    const started = entries.map(({ n, mtime }) => this.#process(n, { leftover: true, mtime }));
    for (const p of started) this.#track(p);
    await Promise.allSettled(started);
  }

  async #process(name: string, leftover?: { leftover: true; mtime: number }): Promise<void> {
    const { log } = this.options;
    if (!SPOOL_NAME.test(name)) {
      log.warn({ name: name.slice(0, 64) }, 'ignoring a ring message that is not a spool name');
      return;
    }
    const path = join(this.paths.spool, name);
    let spool: SpoolEvent;
    try {
      const bytes = readSpoolBytes(path, this.#uid);
      if (leftover && !bytes.includes(END_MARK)) {
        // still being written (it will be rung) or left by a hook that died mid-write
        if (Date.now() - leftover.mtime > STALE_PARTIAL_MS) discard(path);
        return;
      }
      discard(path);
      spool = parseSpoolFile(bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a duplicate ring
      const refused = err instanceof SpoolEntryRefused;
      log.error({ file: path, err: errorMessage(err) }, refused ? 'spool file refused' : 'unreadable spool file dropped');
      discard(path);
      await this.#answerWait(name, { verdict: 'deny', reason: 'unreadable event', config: [] });
      return;
    }
    const scriptType = spool.env.script_type ?? '';
    if (scriptType === 'client-crresponse') {
      this.#answered(spool);
      await this.#answerWait(name, { verdict: 'accept', config: [] });
      return;
    }
    if (!isEventName(scriptType)) {
      log.error({ scriptType: scriptType.slice(0, 64) }, 'spool file names no known script_type');
      await this.#answer(spool, name, { verdict: 'deny', reason: 'unknown script_type', config: [] });
      return;
    }
    if (!leftover) await this.#endSessionsOfLostOpenvpn(spool.env);
    const raw = { name: scriptType, instance: this.options.instance, source: 'hook' as const, env: spool.env, args: spool.args };
    let key: ConnectionKey | undefined;
    const asks = spool.mode === 'ask' && scriptType === 'user-pass-verify';
    const run: RunOptions = asks
      ? { challenge: (c, signal) => this.#challenge(spool.env, name, c, signal), onPending: (p) => this.#pendingAuth(spool.env, name, p) }
      : {};
    const decision = await this.options.sink.handle({ raw, keyOf: (e) => (key = keyOf(e)), run });
    await this.#answer(spool, name, decision);
    // answered first: OpenVPN waits for the answer, not for the firewall
    if (scriptType === 'client-connect' && decision.verdict === 'accept' && key && this.options.config['learn-address'] === 'connect') {
      await this.options.sink.learnAtConnect(key);
    }
  }

  /**
   * An OpenVPN that crashed runs no hook to say so (no down, no client-disconnect). A hook from
   * an OpenVPN process not seen before, while none of those seen before runs any more, tells:
   * their clients are gone, and their disconnects were missed. (Several OpenVPN servers may
   * share one daemon: while one of them runs, nothing is ended.) Taken before the event is
   * handled, so only sessions from before end.
   */
  async #endSessionsOfLostOpenvpn(env: Readonly<Record<string, string>>): Promise<void> {
    const pid = Number(env.daemon_pid);
    if (!Number.isInteger(pid) || pid <= 0) return;
    const openvpn = `${pid}/${env.daemon_start_time ?? ''}`;
    if (this.#openvpns.has(openvpn)) return;
    const before = [...this.#openvpns];
    const gone = before.filter((o) => !processRuns(Number(o.slice(0, o.indexOf('/')))));
    for (const o of gone) this.#openvpns.delete(o);
    this.#openvpns.add(openvpn);
    if (before.length === 0 || gone.length < before.length) return;
    const { sink, instance, log } = this.options;
    // an empty list, every hook session of the instance closed as missed
    const { closedAsMissed } = await sink.rebuild(instance, [], { closeMissed: 'hook' });
    if (closedAsMissed > 0) log.warn({ instance, sessions: closedAsMissed }, 'OpenVPN was restarted without a down hook; its sessions ended as missed');
  }

  async #answer(spool: SpoolEvent, name: string, decision: Decision): Promise<void> {
    const { env } = spool;
    const ok = decision.verdict === 'accept';
    try {
      if (spool.mode === 'defer' && env.script_type === 'client-connect') {
        // Config first: OpenVPN reads it as soon as it sees 1 in the deferred file. And the
        // answer can be faster than the hook's exit: OpenVPN then checks the deferred file
        // right after the hook returns, and anything but 2 there counts as success with this
        // config file. So a denial also writes `disable`, which refuses the client either way.
        const config = ok ? decision.config.map((l) => `${l}\n`).join('') : 'disable\n';
        writeExisting(openvpnFile(env, 'client_connect_config_file'), config);
        writeExisting(openvpnFile(env, 'client_connect_deferred_file'), ok ? '1' : '0');
      } else if ((spool.mode === 'defer' || spool.mode === 'ask') && env.script_type === 'user-pass-verify') {
        if (!ok && decision.clientReason && env.auth_failed_reason_file) {
          try {
            writeExisting(env.auth_failed_reason_file, decision.clientReason.replace(/[\r\n]/g, ' '));
          } catch {
            // the reason is a courtesy; the answer below is what counts
          }
        }
        writeExisting(openvpnFile(env, 'auth_control_file'), ok ? '1' : '0');
        // ask: the hook still waits unless a challenge let it go; the verdict is in place
        if (spool.mode === 'ask') await this.#reply(name, '2\n');
      } else if (spool.mode === 'wait') {
        await this.#answerWait(name, decision);
      }
    } catch (err) {
      this.options.log.warn({ event: env.script_type, err: errorMessage(err) }, 'could not answer OpenVPN (it may have given up on this client)');
    }
  }

  async #answerWait(name: string, decision: Decision): Promise<void> {
    const line = decision.verdict === 'accept' ? '1\n' : `0 ${(decision.reason ?? 'denied').replace(/[\r\n]/g, ' ').slice(0, 512)}\n`;
    await this.#reply(name, line);
  }

  /**
   * Puts a plugin's question to a client whose user-pass-verify hook waits in ask mode: the
   * question into `auth_pending_file`, then `2` to the hook, which returns so that OpenVPN sends
   * it. Resolves with the answer from the client's client-crresponse. Where the hook no longer
   * waits (it timed out, or a question was already asked), OpenVPN will not read the file:
   * FXS_CHALLENGE_UNAVAILABLE.
   */
  async #challenge(env: Readonly<Record<string, string>>, name: string, c: Challenge, signal: AbortSignal): Promise<string> {
    const { instance, log } = this.options;
    const client = parseCrResponse({ instance, source: 'hook', env, response: undefined });
    const id = challengeKey(instance, client);
    if (this.#challenges.has(id)) throw new Error('a challenge to this client is already waiting for its answer');
    const unavailable = (why: string) => new FlexscriptError(ErrorCode.CHALLENGE_UNAVAILABLE, `challenge() cannot reach the client: ${why}`);
    if (!this.#isWaiting(name)) throw unavailable('the user-pass-verify hook no longer waits (hook.timeout passed, or the hook line is not in ask mode)');
    // CR_TEXT:flags:text; E: the client shows what is typed, R: an answer is required
    const extra = `CR_TEXT:${c.echo === false ? 'R' : 'E,R'}:${c.text.replace(/[\r\n]+/g, ' ')}`;
    try {
      writeExisting(openvpnFile(env, 'auth_pending_file'), `${c.timeout}\ncrtext\n${extra}\n`);
    } catch (err) {
      throw unavailable(`auth_pending_file: ${errorMessage(err)}`);
    }
    const answer = new Promise<string>((resolve, reject) => {
      const settle = (a: string | Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#challenges.delete(id);
        if (a instanceof Error) reject(a);
        else resolve(a);
      };
      const onAbort = () => settle(new Error('the challenge was abandoned'));
      const timer = setTimeout(() => settle(new Error(`no answer to the challenge within ${c.timeout} s`)), c.timeout * 1000);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#challenges.set(id, settle);
    });
    if (!(await this.#reply(name, '2\n'))) {
      this.#challenges.get(id)?.(unavailable('the user-pass-verify hook gave up before the question'));
    } else {
      log.debug({ commonName: client.commonName.slice(0, 64) }, 'challenge handed to OpenVPN');
    }
    return answer;
  }

  /**
   * A plugin's pending notice (a web login's `WEB_AUTH::URL`) to a client whose user-pass-verify
   * hook waits in ask mode: the notice into `auth_pending_file` (timeout, method, extra), then `2`
   * to the hook, which returns so that OpenVPN sends it; the verdict follows in
   * `auth_control_file` as for any deferred user-pass-verify. OpenVPN refuses a method the
   * client did not announce in IV_SSO.
   */
  async #pendingAuth(env: Readonly<Record<string, string>>, name: string, p: PendingAuth): Promise<void> {
    const method = pendingMethod(p.extra);
    const unavailable = (why: string) => new FlexscriptError(ErrorCode.CHALLENGE_UNAVAILABLE, `pending() cannot reach the client: ${why}`);
    if (!method) throw unavailable('in hook mode the pending notice must start with WEB_AUTH:, OPEN_URL: or CR_TEXT:');
    if (!this.#isWaiting(name)) throw unavailable('the user-pass-verify hook no longer waits (hook.timeout passed, or the hook line is not in ask mode)');
    try {
      writeExisting(openvpnFile(env, 'auth_pending_file'), `${p.timeout}\n${method}\n${p.extra.replace(/[\r\n]+/g, ' ')}\n`);
    } catch (err) {
      throw unavailable(`auth_pending_file: ${errorMessage(err)}`);
    }
    if (!(await this.#reply(name, '2\n'))) throw unavailable('the user-pass-verify hook gave up before the notice');
  }

  /** A client-crresponse: the answer to the challenge waiting for that client, if any. */
  #answered(spool: SpoolEvent): void {
    const { instance, log } = this.options;
    let event: ReturnType<typeof parseCrResponse>;
    try {
      event = parseCrResponse({ instance, source: 'hook', env: spool.env, response: spool.crResponse });
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'unreadable challenge response dropped');
      return;
    }
    const settle = this.#challenges.get(challengeKey(instance, event));
    if (!settle) {
      log.info(
        { commonName: event.commonName.slice(0, 64), realAddress: event.realAddress, realPort: event.realPort },
        'a challenge response nobody waits for was dropped',
      );
      return;
    }
    settle(event.response ?? new Error('the challenge response is not base64 of UTF-8 text'));
  }

  /** Writes one line to a waiting hook's reply FIFO and removes it; false when the hook no longer waits. */
  async #reply(name: string, line: string): Promise<boolean> {
    const path = join(this.paths.reply, name);
    try {
      // non-blocking: if the hook already gave up, there is no reader and this fails at once
      const fh = await fs.open(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
      try {
        // only the FIFO the hook made; a file planted under its name is not written
        if (!(await fh.stat()).isFIFO()) throw new Error('the reply entry is not a FIFO');
        await fh.write(line);
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.options.log.warn({ name, err: errorMessage(err) }, 'waiting hook gave up before the answer');
      return false;
    } finally {
      await fs.rm(path, { force: true });
    }
  }
}

/**
 * @module root-client
 * The daemon's side of the root stage (runs unprivileged). It starts `flexscript-root` once
 * through `sudo -n`, keeps it on a pipe and matches answers to requests by id, each with a time
 * limit. When the stage dies, requests in flight fail with FXS_ROOT_UNAVAILABLE (callers may
 * retry) and the stage is restarted with exponential backoff. After every start the client
 * asks the daemon for the state the kernel should have (`desiredState`) and sends `reconcile`
 * before anything else, so changes missed while the stage was down are made up for.
 *
 * Each start also sends `ensure` at once: its answer (or a reconcile's) shows the nft table
 * with its drop rule is in place, which the firewall waits for before it admits anyone
 * (`tableReady`). The client never has more requests written than the stage accepts at once
 * (LIMITS.inflight, LIMITS.inflightBytes); the rest wait here, in order. Should the stage refuse
 * one as BUSY anyway, that request fails and a reconcile follows, so no change is lost for good.
 *
 * @example
 * const root = new RootClient({ log, desiredState: () => sessions.kernelState() });
 * root.start();
 * await root.setAdd('staff', '10.8.0.2');
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { tracingChannel } from 'node:diagnostics_channel';
import { readLines } from './line-reader.ts';
import {
  decodeResponse,
  encodeLine,
  LIMITS,
  RootError,
  RootErrorCode,
  type DesiredState,
  type ReconcileResult,
  type RootAction,
  type RootActionArgs,
  type RootActionResults,
  type RootResponse,
  type RootState,
  type RouteSpec,
} from './protocol.ts';
import { DEFAULT_ROOT_CONFIG, rootCommand } from './sudoers.ts';

/** The subset of a pino logger the client uses. */
export interface RootClientLog {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
}

export interface RootClientOptions {
  /** The root stage's argv; default `['sudo', '-n', <bin/flexscript-root.js>, '--config', config]`. */
  readonly command?: readonly string[];
  /** The root config for the default command; default /etc/flexscript/root.yaml. */
  readonly config?: string;
  readonly log: RootClientLog;
  /** Delay before a restart: minMs, doubled after each quick failure, at most maxMs. */
  readonly restart?: { readonly minMs: number; readonly maxMs: number };
  /** Time limit of one request; default 30 s. */
  readonly timeoutMs?: number;
  /** The kernel state that matches the live sessions; sent as `reconcile` after every start. */
  readonly desiredState: () => DesiredState | Promise<DesiredState>;
}

/**
 * One request to the root stage, as the `flexscript:root-action` tracing channel carries it: the
 * action at the start; its time and, if it failed, its error code once it has finished.
 */
export interface RootActionMessage {
  readonly action: RootAction;
  ms?: number;
  code?: string;
}

/**
 * Every request to the root stage is traced here (metrics, `flexscript watch`). Opened by name,
 * so the root stage's code depends on nothing outside its folder; src/observe declares the same name.
 */
const rootActions = tracingChannel<RootActionMessage, RootActionMessage>('flexscript:root-action');

export type RootClientState = 'idle' | 'starting' | 'running' | 'backoff' | 'closed';

export interface TableStatus {
  readonly ready: boolean;
  /** Not ready, but no verdict yet: the stage is starting and has not failed. */
  readonly pending: boolean;
  readonly reason?: string;
}

export interface RootClientStats {
  readonly state: RootClientState;
  /** A stage confirmed the nft table (ensure or reconcile answered) since the client started. */
  readonly tableReady: boolean;
  /** Why the last stage stopped or failed (its last error, how it stopped); cleared once one serves. */
  readonly problem: string | undefined;
  /** Process id of the started command (sudo), while it runs. */
  readonly pid: number | undefined;
  readonly starts: number;
  readonly exits: number;
  /** Reconciles after a start that succeeded. */
  readonly reconciles: number;
}

interface Pending {
  readonly id: number;
  readonly action: RootAction;
  readonly line: string;
  resolve(result: unknown): void;
  reject(err: RootError): void;
  timer: NodeJS.Timeout;
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

export class RootClient {
  readonly #command: readonly string[];
  readonly #log: RootClientLog;
  readonly #restart: { readonly minMs: number; readonly maxMs: number };
  readonly #timeoutMs: number;
  readonly #desiredState: RootClientOptions['desiredState'];
  #state: RootClientState = 'idle';
  #child: ChildProcessWithoutNullStreams | undefined;
  #nextId = 1;
  /** Written and waiting for an answer. */
  readonly #pending = new Map<number, Pending>();
  /** Not written yet: held while starting (they go out after the reconcile) or while the window is full. */
  #held: Pending[] = [];
  /** Lengths of the lines written and not answered, timed-out ones included: the stage still holds them. */
  readonly #written = new Map<number, { readonly size: number; readonly flush: boolean }>();
  #writtenBytes = 0;
  #writtenFlushes = 0;
  #tableReady = false;
  #problem: string | undefined;
  /** The stage's last error line, to say why it stopped. */
  #lastStageError: string | undefined;
  #resyncing = false;
  /** Waiting for the table's verdict (tableSettled). */
  readonly #settled = new Set<() => void>();
  #failures = 0;
  #startedAt = 0;
  /** The running stage has answered at least once. */
  #answered = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #gone: (() => void) | undefined;
  #stats = { starts: 0, exits: 0, reconciles: 0 };

  constructor(options: RootClientOptions) {
    this.#command = options.command ?? ['sudo', '-n', ...rootCommand(options.config ?? DEFAULT_ROOT_CONFIG)];
    if (this.#command.length === 0) throw new RangeError('command must not be empty');
    this.#log = options.log;
    this.#restart = options.restart ?? { minMs: 500, maxMs: 30_000 };
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#desiredState = options.desiredState;
  }

  get stats(): RootClientStats {
    return { state: this.#state, tableReady: this.#tableReady, problem: this.#problem, pid: this.#child?.pid, ...this.#stats };
  }

  /**
   * Whether the nft table is known to be in place, and if not, why (for the firewall and
   * status). `pending`: no verdict yet, the stage is starting and has not failed.
   */
  tableStatus(): TableStatus {
    if (this.#tableReady) return { ready: true, pending: false };
    const starting = this.#state === 'running' || this.#state === 'starting';
    const state = starting ? 'the root stage is starting' : `the root stage is not running (${this.#state})`;
    return { ready: false, pending: starting && this.#problem === undefined, reason: this.#problem ? `${state}: ${this.#problem}` : state };
  }

  /** Resolves with tableStatus() once it is no longer pending, or when `signal` aborts. */
  tableSettled(signal?: AbortSignal): Promise<TableStatus> {
    const now = this.tableStatus();
    if (!now.pending || signal?.aborted) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = () => {
        this.#settled.delete(done);
        signal?.removeEventListener('abort', done);
        resolve(this.tableStatus());
      };
      this.#settled.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #tableSettledNow(): void {
    for (const done of [...this.#settled]) done();
  }

  /** Starts the root stage (once; later starts are restarts after it died). */
  start(): void {
    if (this.#state === 'idle') this.#spawn();
  }

  ensure(): Promise<RootActionResults['ensure']> {
    return this.#request('ensure', {});
  }

  setAdd(group: string, address: string): Promise<void> {
    return this.#request('set-add', { group, address });
  }

  setRemove(group: string, address: string): Promise<void> {
    return this.#request('set-remove', { group, address });
  }

  routeAdd(route: RouteSpec): Promise<{ readonly changed: boolean }> {
    return this.#request('route-add', route);
  }

  routeRemove(route: RouteSpec): Promise<{ readonly changed: boolean }> {
    return this.#request('route-remove', route);
  }

  conntrackFlush(address: string): Promise<{ readonly deleted: number }> {
    return this.#request('conntrack-flush', { address });
  }

  list(): Promise<RootState> {
    return this.#request('list', {});
  }

  reconcile(state: DesiredState): Promise<ReconcileResult> {
    return this.#request('reconcile', state);
  }

  /** Closes the stage's stdin and waits for it to finish what it has; then it is stopped. */
  async close(graceMs = 5000): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#restartTimer);
    for (const p of this.#held.splice(0)) this.#fail(p, RootErrorCode.CLOSED, 'the root client was closed');
    const child = this.#child;
    if (!child) return;
    const gone = new Promise<void>((resolveGone) => {
      this.#gone = resolveGone;
    });
    child.stdin.end();
    const signal = (sig: NodeJS.Signals, afterMs: number) =>
      setTimeout(() => {
        if (this.#child === child) child.kill(sig);
      }, afterMs);
    const term = signal('SIGTERM', graceMs);
    const kill = signal('SIGKILL', graceMs + 2000);
    await gone;
    clearTimeout(term);
    clearTimeout(kill);
  }

  #request<A extends RootAction>(action: A, args: RootActionArgs[A], first = false): Promise<RootActionResults[A]> {
    // nobody watching: no message is made
    if (!rootActions.hasSubscribers) return this.#send(action, args, first);
    const message: RootActionMessage = { action };
    const started = performance.now();
    return rootActions.tracePromise(
      () =>
        this.#send(action, args, first).then(
          (result) => {
            message.ms = performance.now() - started;
            return result;
          },
          (err: unknown) => {
            message.ms = performance.now() - started;
            message.code = (err as { code?: string }).code ?? 'UNKNOWN';
            throw err;
          },
        ),
      message,
    );
  }

  #send<A extends RootAction>(action: A, args: RootActionArgs[A], first = false): Promise<RootActionResults[A]> {
    if (this.#state === 'closed') return Promise.reject(new RootError(RootErrorCode.CLOSED, 'the root client was closed'));
    if (this.#state === 'idle' || this.#state === 'backoff') {
      return Promise.reject(
        new RootError(RootErrorCode.UNAVAILABLE, `the root stage is not running (${this.#state === 'idle' ? 'not started' : 'restarting'})`),
      );
    }
    return new Promise<unknown>((resolve, reject) => {
      const id = this.#nextId++;
      const pending: Pending = {
        id,
        action,
        line: encodeLine({ ...args, id, action }),
        resolve,
        reject,
        timer: setTimeout(() => this.#fail(pending, RootErrorCode.TIMEOUT, `no answer to ${action} within ${this.#timeoutMs} ms`), this.#timeoutMs),
      };
      if (first) this.#held.unshift(pending);
      else this.#held.push(pending);
      this.#pump();
    }) as Promise<RootActionResults[A]>;
  }

  /** Writes held requests, in order, while the stage runs and has room for them. */
  #pump(): void {
    if (this.#state !== 'running') return;
    while (this.#held.length > 0) {
      const next = this.#held[0]!;
      const full =
        this.#written.size >= LIMITS.inflight ||
        (this.#written.size > 0 && this.#writtenBytes + next.line.length > LIMITS.inflightBytes) ||
        (next.action === 'conntrack-flush' && this.#writtenFlushes >= LIMITS.conntrackInflight);
      // the head waits, and everything behind it: requests take effect in the order they were made
      if (full) return;
      this.#held.shift();
      this.#write(next);
    }
  }

  #write(p: Pending): void {
    this.#pending.set(p.id, p);
    const flush = p.action === 'conntrack-flush';
    this.#written.set(p.id, { size: p.line.length, flush });
    this.#writtenBytes += p.line.length;
    if (flush) this.#writtenFlushes += 1;
    this.#child?.stdin.write(p.line);
  }

  /** The stage answered (or never will): its room is free again. */
  #unwritten(id: number): void {
    const written = this.#written.get(id);
    if (written === undefined) return;
    this.#written.delete(id);
    this.#writtenBytes -= written.size;
    if (written.flush) this.#writtenFlushes -= 1;
  }

  #fail(p: Pending, code: RootErrorCode, message: string): void {
    clearTimeout(p.timer);
    this.#pending.delete(p.id);
    this.#held = this.#held.filter((h) => h !== p);
    p.reject(new RootError(code, message));
  }

  #spawn(): void {
    this.#state = 'starting';
    this.#lastStageError = undefined;
    this.#stats.starts += 1;
    this.#startedAt = Date.now();
    this.#answered = false;
    const [file, ...args] = this.#command as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#log.info({ command: this.#command, pid: child.pid, start: this.#stats.starts }, 'starting root stage');
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, reason?: string) => {
      if (gone) return;
      gone = true;
      this.#onGone(child, code, signal, reason);
    };
    child.on('error', (err) => onGone(null, null, err.message));
    child.on('close', (code, signal) => onGone(code, signal));
    // a stage that died leaves a broken pipe: its exit is handled in onGone
    child.stdin.on('error', () => {});
    readLines(child.stdout, LIMITS.line * 4, {
      line: (text) => this.#onResponse(text),
      tooLong: () => this.#log.error({}, 'root stage wrote an overlong line'),
    });
    readLines(child.stderr, 1024 * 1024, { line: (text) => this.#forwardLog(text) });
    this.#ensureAfterStart();
    void this.#reconcileAfterStart(child);
  }

  /** Asks the new stage for the table at once, ahead of the reconcile (ensure changes no set element). */
  #ensureAfterStart(): void {
    const ensure = new Promise<unknown>((resolve, reject) => {
      const id = this.#nextId++;
      const pending: Pending = {
        id,
        action: 'ensure',
        line: encodeLine({ id, action: 'ensure' }),
        resolve,
        reject,
        timer: setTimeout(() => this.#fail(pending, RootErrorCode.TIMEOUT, `no answer to ensure within ${this.#timeoutMs} ms`), this.#timeoutMs),
      };
      this.#write(pending);
    });
    ensure.then(
      () => this.#confirmTable('ensure'),
      (err: RootError) => {
        // a stage that stopped has already said why
        if (err.code === RootErrorCode.UNAVAILABLE || err.code === RootErrorCode.CLOSED) return;
        this.#problem = `ensure failed: ${err.message}`;
        this.#log.error({ code: err.code, reason: err.message }, 'the root stage could not put the nft table in place');
        this.#tableSettledNow();
      },
    );
  }

  #confirmTable(by: string): void {
    this.#problem = undefined;
    if (this.#tableReady) return;
    this.#tableReady = true;
    this.#log.info({ by }, 'the nft table is in place');
    this.#tableSettledNow();
  }

  /** After a BUSY refusal: once the stage has room, make the kernel match the live sessions again. */
  #resync(): void {
    if (this.#resyncing || this.#state !== 'running') return;
    this.#resyncing = true;
    void (async () => {
      try {
        const result = await this.#request('reconcile', await this.#desiredState());
        this.#stats.reconciles += 1;
        this.#log.info({ result }, 'root stage reconciled after refusing a request as busy');
      } catch (err) {
        this.#log.error({ code: (err as RootError).code, reason: (err as Error).message }, 'reconcile after a busy refusal failed');
      } finally {
        this.#resyncing = false;
      }
    })();
  }

  async #reconcileAfterStart(child: ChildProcessWithoutNullStreams): Promise<void> {
    let desired: DesiredState | undefined;
    try {
      desired = await this.#desiredState();
    } catch (err) {
      this.#log.error({ reason: (err as Error).message }, 'desiredState() failed; root stage starts without reconcile');
    }
    if (this.#child !== child || this.#state !== 'starting') return;
    this.#state = 'running';
    if (desired) {
      // written before anything held, so the stage reconciles first
      const reconcile = this.#request('reconcile', desired, true);
      reconcile.then(
        (result) => {
          this.#stats.reconciles += 1;
          this.#confirmTable('reconcile');
          this.#log.info({ result }, 'root stage reconciled');
        },
        (err: RootError) => this.#log.error({ code: err.code, reason: err.message }, 'reconcile after start failed'),
      );
    }
    this.#pump();
  }

  #onResponse(text: string): void {
    let response: RootResponse;
    try {
      response = decodeResponse(text);
    } catch (err) {
      this.#log.error({ code: (err as RootError).code, line: text.slice(0, 200) }, (err as Error).message);
      return;
    }
    if (response.id !== null) this.#unwritten(response.id);
    const p = response.id === null ? undefined : this.#pending.get(response.id);
    if (!p) {
      // a refused broken line, or an answer that came after its time limit
      this.#log.warn({ response }, 'root stage answer matches no waiting request');
      return;
    }
    clearTimeout(p.timer);
    this.#pending.delete(p.id);
    this.#answered = true;
    if (response.ok) p.resolve(response.result);
    else p.reject(new RootError(response.error.code, response.error.message));
    if (!response.ok && response.error.code === RootErrorCode.BUSY) {
      this.#log.error({ action: p.action, reason: response.error.message }, 'the root stage refused a request as busy; a reconcile follows');
      this.#resync();
    }
    this.#pump();
  }

  #forwardLog(text: string): void {
    let record: Record<string, unknown> | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) record = value as Record<string, unknown>;
    } catch {
      // sudo's own messages are plain text
    }
    if (!record) {
      this.#lastStageError = text.slice(0, 300);
      this.#log.warn({ root: { line: text.slice(0, 1000) } }, `flexscript-root: ${text.slice(0, 200)}`);
      return;
    }
    const { level, msg, time: _time, ...fields } = record;
    const method = typeof level === 'string' && LEVELS.has(level) ? (level as 'debug' | 'info' | 'warn' | 'error') : 'error';
    if ((method === 'error' || level === 'fatal') && typeof msg === 'string') this.#lastStageError = msg.slice(0, 300);
    this.#log[method]({ root: fields }, `flexscript-root: ${typeof msg === 'string' ? msg : ''}`);
  }

  #onGone(child: ChildProcessWithoutNullStreams, code: number | null, signal: NodeJS.Signals | null, reason?: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#stats.exits += 1;
    const closed = this.#state === 'closed';
    const why = reason ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    const failCode = closed ? RootErrorCode.CLOSED : RootErrorCode.UNAVAILABLE;
    this.#written.clear();
    this.#writtenBytes = 0;
    this.#writtenFlushes = 0;
    this.#problem = `it stopped (${why})${this.#lastStageError ? `: ${this.#lastStageError}` : ''}`;
    for (const p of [...this.#pending.values(), ...this.#held]) this.#fail(p, failCode, `the root stage stopped (${why}) before answering`);
    if (closed) {
      this.#log.info({ code, signal }, 'root stage stopped');
      this.#tableSettledNow();
      this.#gone?.();
      return;
    }
    // a stage that served for a while starts the backoff over; one that dies young doubles it
    if (this.#answered && Date.now() - this.#startedAt >= this.#restart.maxMs) this.#failures = 0;
    const delay = Math.min(this.#restart.maxMs, this.#restart.minMs * 2 ** this.#failures);
    this.#failures += 1;
    this.#state = 'backoff';
    this.#tableSettledNow();
    this.#log.error({ code, signal, reason: why, restartInMs: delay }, 'root stage stopped; restarting');
    this.#restartTimer = setTimeout(() => {
      if (this.#state === 'backoff') this.#spawn();
    }, delay);
  }
}

/**
 * @module root-stage
 * Turns request lines into actions and results into response lines. Validation and queueing
 * happen synchronously when a line arrives, so requests take effect in the order they were
 * sent even though their answers may come back out of order (they are matched by id).
 *
 * The work held at once is bounded: a request that arrives while LIMITS.inflight requests (or
 * LIMITS.inflightBytes of them) are unanswered is refused with BUSY before anything is parsed
 * or started, so a flood of lines costs a refusal each, never memory or processes without end.
 */
import { flushConntrack } from './conntrack.ts';
import type { HostAddress } from './ip-address.ts';
import type { NftManager } from './nft-manager.ts';
import { LIMITS, RootError, RootErrorCode, type RootResponse, type RootState, type RouteSpec } from './protocol.ts';
import type { RootLog } from './root-log.ts';
import type { RouteManager } from './routes.ts';
import { localAddressCheck } from './local-addresses.ts';
import { parseRequestLine, type IsLocalAddress, type ValidRequest, type ValidRoute } from './validate.ts';
import type { RootConfig } from './root-config.ts';

export interface RootStageOptions {
  readonly config: RootConfig;
  readonly log: RootLog;
  readonly nft: NftManager;
  readonly routes: RouteManager;
  readonly conntrack?: (address: HostAddress, log: RootLog) => Promise<{ deleted: number }>;
  /** Bounds on unanswered requests; default LIMITS.inflight, LIMITS.inflightBytes and LIMITS.conntrackInflight. */
  readonly limits?: { readonly inflight: number; readonly inflightBytes: number; readonly conntrackInflight: number };
  /** The host's own addresses, read once per request; default: the kernel's (getifaddrs). */
  readonly localAddresses?: () => IsLocalAddress;
}

/** The id of a line refused unread, when it has one. */
function peekId(line: string): number | null {
  try {
    const id: unknown = (JSON.parse(line) as { id?: unknown } | null)?.id;
    return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : null;
  } catch {
    return null;
  }
}

function routeToWire(r: ValidRoute): RouteSpec & { table: number } {
  return { network: r.network.text, ...(r.via ? { via: r.via.text } : {}), ...(r.dev !== undefined ? { dev: r.dev } : {}), table: r.table };
}

export class RootStage {
  readonly #o: RootStageOptions;
  readonly #limits: { readonly inflight: number; readonly inflightBytes: number; readonly conntrackInflight: number };
  #inflight = 0;
  #conntrackInflight = 0;
  #inflightBytes = 0;
  #busySince = 0;
  #busyRefused = 0;

  constructor(options: RootStageOptions) {
    this.#o = options;
    this.#limits = options.limits ?? { inflight: LIMITS.inflight, inflightBytes: LIMITS.inflightBytes, conntrackInflight: LIMITS.conntrackInflight };
  }

  /** Requests accepted and not yet answered. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Answers one request line; never rejects. */
  handle(line: string): Promise<RootResponse> {
    if (this.#inflight >= this.#limits.inflight || (this.#inflight > 0 && this.#inflightBytes + line.length > this.#limits.inflightBytes)) {
      return Promise.resolve(this.#busy(line));
    }
    const parsed = parseRequestLine(line, this.#o.config, (this.#o.localAddresses ?? localAddressCheck)());
    if (!parsed.ok) {
      this.#o.log.warn({ id: parsed.id, code: parsed.error.code, reason: parsed.error.message }, 'request refused');
      return Promise.resolve({ id: parsed.id, ok: false, error: parsed.error });
    }
    const { request } = parsed;
    const flush = request.action === 'conntrack-flush';
    if (flush && this.#conntrackInflight >= this.#limits.conntrackInflight) return Promise.resolve(this.#busy(line, 'conntrack-flush '));
    let work: Promise<unknown>;
    try {
      work = this.#dispatch(request);
    } catch (err) {
      work = Promise.reject(err);
    }
    this.#inflight += 1;
    this.#inflightBytes += line.length;
    if (flush) this.#conntrackInflight += 1;
    const done = () => {
      this.#inflight -= 1;
      this.#inflightBytes -= line.length;
      if (flush) this.#conntrackInflight -= 1;
    };
    return work.then(
      (result): RootResponse => {
        done();
        return result === undefined ? { id: request.id, ok: true } : { id: request.id, ok: true, result };
      },
      (err: unknown): RootResponse => {
        done();
        const e = err instanceof RootError ? err : new RootError(RootErrorCode.INTERNAL, `unexpected failure: ${(err as Error)?.message ?? String(err)}`);
        this.#o.log.warn({ id: request.id, action: request.action, code: e.code, reason: e.message }, 'request failed');
        return { id: request.id, ok: false, error: { code: e.code, message: e.message } };
      },
    );
  }

  /** Refuses a line unread; logged once per busy spell, not once per line. */
  #busy(line: string, kind = ''): RootResponse {
    const id = peekId(line);
    this.#busyRefused += 1;
    const now = Date.now();
    if (now - this.#busySince > 1000) {
      this.#o.log.warn({ code: RootErrorCode.BUSY, inflight: this.#inflight, refusedSoFar: this.#busyRefused }, 'busy: refusing requests until some finish');
      this.#busySince = now;
    }
    return {
      id,
      ok: false,
      error: {
        code: RootErrorCode.BUSY,
        message: kind
          ? `busy: ${this.#conntrackInflight} ${kind}requests in flight (at most ${this.#limits.conntrackInflight}); this one was not started, send it again later`
          : `busy: ${this.#inflight} requests in flight (at most ${this.#limits.inflight}, ${this.#limits.inflightBytes} bytes); this one was not started, send it again later`,
      },
    };
  }

  /** The answer to a line that was too long to read. */
  tooLong(): RootResponse {
    this.#o.log.warn({ code: RootErrorCode.TOO_LONG }, 'request refused');
    return { id: null, ok: false, error: { code: RootErrorCode.TOO_LONG, message: `a request line is longer than ${LIMITS.line} bytes` } };
  }

  /** Starts the work for a valid request (synchronously queued) and returns its result. */
  #dispatch(r: ValidRequest): Promise<unknown> {
    const { nft, routes, log } = this.#o;
    switch (r.action) {
      case 'ensure':
        return nft.ensure();
      case 'set-add':
        return nft.change('add', r.group, r.address);
      case 'set-remove':
        return nft.change('remove', r.group, r.address);
      case 'route-add':
        return routes.add(r.route);
      case 'route-remove':
        return routes.remove(r.route);
      case 'conntrack-flush':
        return (this.#o.conntrack ?? flushConntrack)(r.address, log);
      case 'list':
        return Promise.all([nft.list(), routes.list()]).then(([sets, rs]): RootState => ({ sets, routes: rs.map(routeToWire) }));
      case 'reconcile':
        if (r.skipped.length > 0) {
          log.warn({ id: r.id, skipped: r.skipped.length, first: r.skipped.slice(0, 5) }, 'reconcile left out addresses that are not VPN client addresses');
        }
        return this.#reconcile(r.sets, r.routes).then((result) =>
          r.skipped.length > 0 ? { ...result, skipped: r.skipped.slice(0, 20).map((s) => s.address) } : result,
        );
    }
  }

  async #reconcile(sets: ReadonlyMap<string, readonly HostAddress[]>, routes: readonly ValidRoute[]) {
    // both start now; a failure of one does not stop the other
    const [s, r] = await Promise.allSettled([this.#o.nft.reconcile(sets), this.#o.routes.reconcile(routes)]);
    if (s.status === 'fulfilled' && r.status === 'fulfilled') {
      this.#o.log.info({ sets: s.value, routes: r.value }, 'reconciled');
      return { sets: s.value, routes: r.value };
    }
    const failures = [s, r].filter((x): x is PromiseRejectedResult => x.status === 'rejected').map((x) => x.reason as unknown);
    const first = failures[0];
    const code = first instanceof RootError ? first.code : RootErrorCode.INTERNAL;
    throw new RootError(code, `reconcile incomplete: ${failures.map((f) => (f as Error)?.message ?? String(f)).join('; ')}`);
  }
}

/**
 * @module root-stage
 * Turns request lines into actions and results into response lines. Validation and queueing
 * happen synchronously when a line arrives, so requests take effect in the order they were
 * sent even though their answers may come back out of order (they are matched by id).
 */
import { flushConntrack } from './conntrack.ts';
import type { HostAddress } from './ip-address.ts';
import type { NftManager } from './nft-manager.ts';
import { LIMITS, RootError, RootErrorCode, type RootResponse, type RootState, type RouteSpec } from './protocol.ts';
import type { RootLog } from './root-log.ts';
import type { RouteManager } from './routes.ts';
import { parseRequestLine, type ValidRequest, type ValidRoute } from './validate.ts';
import type { RootConfig } from './root-config.ts';

export interface RootStageOptions {
  readonly config: RootConfig;
  readonly log: RootLog;
  readonly nft: NftManager;
  readonly routes: RouteManager;
  readonly conntrack?: (address: HostAddress, log: RootLog) => Promise<{ deleted: number }>;
}

export function routeToWire(r: ValidRoute): RouteSpec & { table: number } {
  return { network: r.network.text, ...(r.via ? { via: r.via.text } : {}), ...(r.dev !== undefined ? { dev: r.dev } : {}), table: r.table };
}

export class RootStage {
  readonly #o: RootStageOptions;

  constructor(options: RootStageOptions) {
    this.#o = options;
  }

  /** Answers one request line; never rejects. */
  handle(line: string): Promise<RootResponse> {
    const parsed = parseRequestLine(line, this.#o.config);
    if (!parsed.ok) {
      this.#o.log.warn({ id: parsed.id, code: parsed.error.code, reason: parsed.error.message }, 'request refused');
      return Promise.resolve({ id: parsed.id, ok: false, error: parsed.error });
    }
    const { request } = parsed;
    let work: Promise<unknown>;
    try {
      work = this.#dispatch(request);
    } catch (err) {
      work = Promise.reject(err);
    }
    return work.then(
      (result): RootResponse => (result === undefined ? { id: request.id, ok: true } : { id: request.id, ok: true, result }),
      (err: unknown): RootResponse => {
        const e = err instanceof RootError ? err : new RootError(RootErrorCode.INTERNAL, `unexpected failure: ${(err as Error)?.message ?? String(err)}`);
        this.#o.log.warn({ id: request.id, action: request.action, code: e.code, reason: e.message }, 'request failed');
        return { id: request.id, ok: false, error: { code: e.code, message: e.message } };
      },
    );
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
        return this.#reconcile(r.sets, r.routes);
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

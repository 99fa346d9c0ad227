/**
 * @module routes
 * Kernel routes behind OpenVPN clients (what an `iroute` needs on the server). Read with
 * `ip -N -d -j route show table all proto N`, written with `ip -batch -` (argv only, commands on
 * stdin built from validated values). Every route this stage writes carries `proto N` from the
 * root config: that mark tells ours apart, and `route del ... proto N` can never remove a route
 * someone else made.
 */
import { findTool, firstLines, run as realRun, type Runner } from './exec.ts';
import { parseAddress, parseNetwork } from './ip-address.ts';
import { RootError, RootErrorCode } from './protocol.ts';
import type { RootConfig } from './root-config.ts';
import type { RootLog } from './root-log.ts';
import { routeKey, type ValidRoute } from './validate.ts';

/** One line of an `ip -batch` script. */
export function routeCommand(op: 'add' | 'replace' | 'del', route: ValidRoute, proto: number): string {
  const words = ['route', op, route.network.text];
  if (op !== 'del') {
    if (route.via) words.push('via', route.via.text);
    if (route.dev !== undefined) words.push('dev', route.dev);
  }
  words.push('proto', String(proto), 'table', String(route.table));
  return words.join(' ');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Our routes from `ip -N -d -j route show table all proto N`, in the config's tables only. */
export function parseRouteListing(json: string, config: RootConfig): ValidRoute[] {
  const doc: unknown = JSON.parse(json === '' ? '[]' : json);
  if (!Array.isArray(doc)) return [];
  const routes: ValidRoute[] = [];
  for (const r of doc) {
    // skip anything we never create: other types, default routes, multipath
    if (!isRecord(r) || (r.type !== undefined && r.type !== '1') || typeof r.dst !== 'string' || r.dst === 'default') continue;
    const table = Number(r.table ?? 254);
    if (!config.routes.tables.includes(table)) continue;
    try {
      const dst = r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`;
      const network = parseNetwork(dst);
      const via = typeof r.gateway === 'string' ? parseAddress(r.gateway) : undefined;
      const dev = typeof r.dev === 'string' ? r.dev : undefined;
      routes.push({ network, table, ...(via ? { via } : {}), ...(dev !== undefined ? { dev } : {}) });
    } catch {
      // not ours to understand; left alone
    }
  }
  return routes;
}

/** The kernel names the device of a gateway route itself: a wanted route without dev matches any. */
function sameNexthop(want: ValidRoute, have: ValidRoute): boolean {
  return want.via?.text === have.via?.text && (want.dev === undefined || want.dev === have.dev);
}

export interface RoutePlan {
  readonly add: readonly ValidRoute[];
  readonly replace: readonly ValidRoute[];
  readonly remove: readonly ValidRoute[];
}

/** What to change so that exactly `desired` remains. */
export function planRoutes(current: readonly ValidRoute[], desired: readonly ValidRoute[]): RoutePlan {
  const have = new Map(current.map((r) => [routeKey(r), r]));
  const want = new Map(desired.map((r) => [routeKey(r), r]));
  const add: ValidRoute[] = [];
  const replace: ValidRoute[] = [];
  for (const [key, r] of want) {
    const existing = have.get(key);
    if (!existing) add.push(r);
    else if (!sameNexthop(r, existing)) replace.push(r);
  }
  const remove = [...have].filter(([key]) => !want.has(key)).map(([, r]) => r);
  return { add, replace, remove };
}

/** Line numbers (1-based) of an `ip -force -batch -` run that failed. */
export function failedBatchLines(stderr: string): number[] {
  return [...stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1]));
}

export interface RouteManagerOptions {
  readonly config: RootConfig;
  readonly log: RootLog;
  readonly runner?: Runner;
  readonly timeoutMs?: number;
}

/** Reads and changes our routes; one operation at a time, so a plan never goes stale. */
export class RouteManager {
  readonly #config: RootConfig;
  readonly #log: RootLog;
  readonly #run: Runner;
  readonly #timeoutMs: number;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: RouteManagerOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#run = options.runner ?? realRun;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => {});
    return next;
  }

  list(): Promise<ValidRoute[]> {
    return this.#serial(() => this.#list());
  }

  /** Adds a route; an identical one is kept, ours with another next hop is replaced, a foreign one is a conflict. */
  add(route: ValidRoute): Promise<{ changed: boolean }> {
    return this.#serial(async () => {
      const existing = (await this.#list()).find((r) => routeKey(r) === routeKey(route));
      if (existing && sameNexthop(route, existing)) return { changed: false };
      const line = routeCommand(existing ? 'replace' : 'add', route, this.#config.routes.proto);
      const result = await this.#batch([line]);
      if (result.failed.length > 0) {
        if (/File exists/.test(result.stderr)) {
          throw new RootError(
            RootErrorCode.ROUTE_CONFLICT,
            `a route to ${route.network.text} in table ${route.table} exists and is not managed by flexscript-root`,
          );
        }
        throw new RootError(RootErrorCode.IP_FAILED, `ip refused "${line}": ${firstLines(result.stderr)}`);
      }
      return { changed: true };
    });
  }

  /** Removes our route to that network (only ours: the delete names our proto). */
  remove(route: ValidRoute): Promise<{ changed: boolean }> {
    return this.#serial(async () => {
      if (!(await this.#list()).some((r) => routeKey(r) === routeKey(route))) return { changed: false };
      const line = routeCommand('del', route, this.#config.routes.proto);
      const result = await this.#batch([line]);
      if (result.failed.length > 0) throw new RootError(RootErrorCode.IP_FAILED, `ip refused "${line}": ${firstLines(result.stderr)}`);
      return { changed: true };
    });
  }

  /** Makes our routes exactly `desired` in one `ip -batch` run; every line is attempted. */
  reconcile(desired: readonly ValidRoute[]): Promise<{ added: number; removed: number }> {
    return this.#serial(async () => {
      const plan = planRoutes(await this.#list(), desired);
      const proto = this.#config.routes.proto;
      const lines = [
        ...plan.remove.map((r) => routeCommand('del', r, proto)),
        ...plan.replace.map((r) => routeCommand('replace', r, proto)),
        ...plan.add.map((r) => routeCommand('add', r, proto)),
      ];
      if (lines.length === 0) return { added: 0, removed: 0 };
      const result = await this.#batch(lines);
      if (result.failed.length > 0) {
        const which = result.failed.slice(0, 5).map((n) => `"${lines[n - 1] ?? `line ${n}`}"`);
        throw new RootError(
          RootErrorCode.IP_FAILED,
          `ip refused ${result.failed.length} of ${lines.length} route changes, e.g. ${which.join(', ')}: ${firstLines(result.stderr, 2)}`,
        );
      }
      return { added: plan.add.length + plan.replace.length, removed: plan.remove.length };
    });
  }

  async #list(): Promise<ValidRoute[]> {
    const args = ['-N', '-d', '-j', 'route', 'show', 'table', 'all', 'proto', String(this.#config.routes.proto)];
    const result = await this.#run(findTool('ip'), args, { timeoutMs: this.#timeoutMs });
    if (result.code !== 0) throw new RootError(RootErrorCode.IP_FAILED, `ip could not list routes: ${firstLines(result.stderr)}`);
    try {
      return parseRouteListing(result.stdout, this.#config);
    } catch (err) {
      throw new RootError(RootErrorCode.IP_FAILED, 'ip printed a route listing that is not JSON', { cause: err });
    }
  }

  async #batch(lines: readonly string[]): Promise<{ failed: number[]; stderr: string }> {
    const started = Date.now();
    const result = await this.#run(findTool('ip'), ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: this.#timeoutMs });
    let failed = failedBatchLines(result.stderr);
    // a failure ip did not attribute to a line still fails the run
    if (result.code !== 0 && failed.length === 0) failed = lines.map((_, i) => i + 1);
    this.#log[failed.length === 0 ? 'info' : 'warn']({ lines: lines.length, failed: failed.length, ms: Date.now() - started }, 'ip batch');
    return { failed, stderr: result.stderr };
  }
}

/**
 * @module protocol
 * The wire protocol between the unprivileged daemon and `flexscript-root`: one JSON object per
 * line on the root stage's stdin (requests) and stdout (responses), matched by `id`.
 *
 * The set of actions is closed. Every argument is a plain typed value (an address, a network, a
 * name from the root config); firewall rules themselves come only from the root config, never
 * from a request. This module is shared by both sides and imports nothing outside `src/root/`, so
 * the root stage loads no code from elsewhere.
 *
 * @example
 * → {"id":1,"action":"set-add","group":"staff","address":"10.8.0.2"}
 * ← {"id":1,"ok":true}
 * → {"id":2,"action":"route-add","network":"0.0.0.0/0","dev":"tun0"}
 * ← {"id":2,"ok":false,"error":{"code":"FXS_ROOT_ROUTE_REFUSED","message":"..."}}
 */
import { codesOf, ROOT_ERROR_CODES } from './error-codes.ts';

export const ROOT_ACTIONS = ['ensure', 'set-add', 'set-remove', 'route-add', 'route-remove', 'conntrack-flush', 'list', 'reconcile'] as const;
export type RootAction = (typeof ROOT_ACTIONS)[number];

/** Stable error codes of the root pipe, declared with their meanings in error-codes.ts. */
export const RootErrorCode = codesOf(ROOT_ERROR_CODES);
export type RootErrorCode = (typeof RootErrorCode)[keyof typeof RootErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(RootErrorCode));
function isRootErrorCode(value: unknown): value is RootErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}

/** An error with a stable code, raised on either side of the pipe. */
export class RootError extends Error {
  readonly code: RootErrorCode;
  constructor(code: RootErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RootError';
    this.code = code;
  }
}

/** Bounds on what one request may carry. */
export const LIMITS = {
  /** Any string argument (an address, a name). */
  string: 256,
  /** One request line, in bytes; a reconcile of a large server is the biggest. */
  line: 8 * 1024 * 1024,
  /** Addresses per group in one reconcile. */
  setElements: 65_536,
  /** Routes in one reconcile. */
  routes: 4096,
  /**
   * Requests the root stage holds at once (accepted, not yet answered); beyond it a request is
   * refused with BUSY. The client never writes more than this, so only a misbehaving peer is
   * refused.
   */
  inflight: 1024,
  /** Bytes of request lines the root stage holds at once (a reconcile line can be large). */
  inflightBytes: 64 * 1024 * 1024,
  /** conntrack-flush requests among them (each runs conntrack twice), so flushes never crowd out set changes. */
  conntrackInflight: 256,
  /** Tool processes the root stage runs at once: one nft, one ip, two conntrack. */
  processes: 4,
  conntrackProcesses: 2,
} as const;

/** A route as it travels on the wire. `table` defaults to the first table in the root config. */
export interface RouteSpec {
  readonly network: string;
  readonly via?: string;
  readonly dev?: string;
  readonly table?: number;
}

/** The kernel state the daemon wants: addresses per group, and the routes behind clients. */
export interface DesiredState {
  readonly sets: Readonly<Record<string, readonly string[]>>;
  readonly routes: readonly RouteSpec[];
}

/** What `list` returns: what the root stage manages right now. Routes always carry `table`. */
export interface RootState {
  readonly sets: Readonly<Record<string, readonly string[]>>;
  readonly routes: readonly (RouteSpec & { readonly table: number })[];
}

export interface ReconcileResult {
  readonly sets: { readonly added: number; readonly removed: number };
  readonly routes: { readonly added: number; readonly removed: number };
  /** Set elements left out: not VPN client addresses (the first 20). */
  readonly skipped?: readonly string[];
}

/** Arguments of each action, without `id` and `action`. */
export interface RootActionArgs {
  ensure: Record<string, never>;
  'set-add': { readonly group: string; readonly address: string };
  'set-remove': { readonly group: string; readonly address: string };
  'route-add': RouteSpec;
  'route-remove': RouteSpec;
  'conntrack-flush': { readonly address: string };
  list: Record<string, never>;
  reconcile: DesiredState;
}

/** Results of each action. */
export interface RootActionResults {
  ensure: { readonly table: string; readonly sets: readonly string[] };
  'set-add': undefined;
  'set-remove': undefined;
  /** `changed` is false when that exact route was already there (or already gone). */
  'route-add': { readonly changed: boolean };
  'route-remove': { readonly changed: boolean };
  'conntrack-flush': { readonly deleted: number };
  list: RootState;
  reconcile: ReconcileResult;
}

export interface RootErrorBody {
  readonly code: RootErrorCode;
  readonly message: string;
}

/** `id` is null only when the request line was too broken to carry one. */
export type RootResponse =
  | { readonly id: number | null; readonly ok: true; readonly result?: unknown }
  | { readonly id: number | null; readonly ok: false; readonly error: RootErrorBody };

export function encodeLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** Parses one response line from the root stage; anything malformed is a PROTOCOL error. */
export function decodeResponse(line: string): RootResponse {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RootError(RootErrorCode.PROTOCOL, 'root stage wrote a line that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RootError(RootErrorCode.PROTOCOL, 'root stage wrote a line that is not an object');
  }
  const v = value as Record<string, unknown>;
  const id = v.id === null || (typeof v.id === 'number' && Number.isSafeInteger(v.id)) ? (v.id as number | null) : undefined;
  if (id === undefined) throw new RootError(RootErrorCode.PROTOCOL, 'root stage response has no valid id');
  if (v.ok === true) return { id, ok: true, result: v.result };
  if (v.ok === false && typeof v.error === 'object' && v.error !== null) {
    const e = v.error as Record<string, unknown>;
    const code = isRootErrorCode(e.code) ? e.code : RootErrorCode.PROTOCOL;
    const message = typeof e.message === 'string' ? e.message : 'no message';
    return { id, ok: false, error: { code, message } };
  }
  throw new RootError(RootErrorCode.PROTOCOL, 'root stage response has neither ok nor error');
}

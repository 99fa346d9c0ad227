/**
 * @module rows
 * Database rows (snake_case, NULLs, BIGINT as string in PostgreSQL) to records, shared by both
 * backends.
 */
import type { DenialRecord, EndReason, KillRequest, SessionRecord } from './store.ts';

export type Row = Record<string, unknown>;

const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));

/** A session's groups as stored: a JSON array, or NULL for none. */
export const groupsColumn = (groups: readonly string[] | undefined): string | null => (groups && groups.length > 0 ? JSON.stringify(groups) : null);

function groupsFromColumn(v: unknown): { groups?: string[] } {
  if (typeof v !== 'string') return {};
  const parsed: unknown = JSON.parse(v);
  return Array.isArray(parsed) ? { groups: parsed.map(String) } : {};
}

export function sessionFromRow(r: Row): SessionRecord {
  return {
    id: String(r.id),
    instance: String(r.instance),
    commonName: String(r.common_name),
    username: str(r.username),
    realAddress: str(r.real_address),
    realPort: num(r.real_port),
    vpnAddress: str(r.vpn_address),
    vpnAddress6: str(r.vpn_address6),
    startedAt: Number(r.started_at),
    endedAt: num(r.ended_at),
    duration: num(r.duration),
    bytesIn: num(r.bytes_in),
    bytesOut: num(r.bytes_out),
    endReason: str(r.end_reason) as EndReason | undefined,
    ...groupsFromColumn(r.client_groups),
  };
}

export function denialFromRow(r: Row): DenialRecord {
  return {
    at: Number(r.at),
    instance: String(r.instance),
    event: String(r.event),
    commonName: str(r.common_name),
    username: str(r.username),
    realAddress: str(r.real_address),
    realPort: num(r.real_port),
    reason: String(r.reason),
    plugin: str(r.plugin),
  };
}

export function killRequestFromRow(r: Row): KillRequest {
  return {
    sessionId: String(r.session_id),
    instance: String(r.instance),
    commonName: String(r.common_name),
    realAddress: str(r.real_address),
    realPort: num(r.real_port),
    reason: String(r.reason),
    requestedAt: Number(r.requested_at),
  };
}

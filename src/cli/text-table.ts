/**
 * @module text-table
 * Plain aligned columns for the command line (status, sessions, bench).
 */

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function textTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** A time for a table: `2026-11-28 21:05:33` (UTC). */
export function tableTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** A client-controlled name shown safely: control characters escaped, no quotes added. */
export function tableName(name: string): string {
  return JSON.stringify(name).slice(1, -1);
}

/**
 * @module entry-values
 * The values of an entry's attribute as strings, and all of them where Active Directory hands
 * them out in ranges: past its MaxValRange (1500 values, 5000 on newer domain controllers) an
 * entry carries `memberOf;range=0-1499` instead of `memberOf`, and the rest is read range by
 * range (`memberOf;range=1500-*`) until a range ends in `*`.
 */
import type { Entry } from 'ldapts';

/** The one operation ranged retrieval needs (an ldapts Client has it). */
export interface EntryReader {
  search(base: string, options: { scope: 'base'; filter: string; attributes: string[] }): Promise<{ searchEntries: Entry[] }>;
}

/** Requests for the rest of one attribute: enough for 256 ranges of AD's smallest size. */
const MAX_RANGES = 256;

function strings(v: Entry[string] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

/** The values of `attribute` (its name in any case) as the entry holds them, no ranges followed. */
export function values(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  return key === undefined ? [] : strings(entry[key]);
}

/** The ranged form of `attribute` in `entry`: its values and where the range ends (`*`: the last). */
function rangeOf(entry: Entry, attribute: string): { readonly values: string[]; readonly end: number | '*' } | undefined {
  const prefix = `${attribute.toLowerCase()};range=`;
  for (const key of Object.keys(entry)) {
    if (!key.toLowerCase().startsWith(prefix)) continue;
    const m = /^(\d+)-(\d+|\*)$/.exec(key.slice(prefix.length));
    if (m) return { values: strings(entry[key]), end: m[2] === '*' ? '*' : Number(m[2]) };
  }
  return undefined;
}

/** All values of `attribute`, at most `max`: the ranges after the first read from the directory. */
export async function allValues(reader: EntryReader, entry: Entry, attribute: string, max: number): Promise<string[]> {
  const out = values(entry, attribute);
  let current: Entry | undefined = entry;
  for (let i = 0; current && i < MAX_RANGES; i++) {
    const range = rangeOf(current, attribute);
    if (!range) break;
    out.push(...range.values);
    // a range that ends in `*`, or brings nothing, is the last
    if (range.end === '*' || range.values.length === 0 || out.length >= max) break;
    const rest = `${attribute};range=${range.end + 1}-*`;
    current = (await reader.search(entry.dn, { scope: 'base', filter: '(objectClass=*)', attributes: [rest] })).searchEntries[0];
  }
  return out.slice(0, max);
}

/**
 * @module yaml-location
 * Where in a YAML file a field is, so a problem found by a schema names its file, line and field
 * (`FILE:LINE: field: problem`, see source-location.ts). Shared by the daemon's config and the
 * root stage's; it lives in src/root because the root stage imports nothing outside src/root, and
 * the rest of the product imports it through src/util/yaml-location.ts.
 */
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { ConfigProblem } from './source-location.ts';

export type FieldPath = readonly PropertyKey[];

/** `plugins[0].options.file`: keys joined by dots, indexes in brackets. */
export function formatField(path: FieldPath): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** A YAML text parsed with positions kept; a text that is not valid YAML gives its problems instead. */
export type PositionedYaml = { readonly doc: Document; readonly counter: LineCounter; readonly problems?: undefined } | { readonly problems: ConfigProblem[] };

/** Parses YAML keeping positions; duplicate keys are an error. Syntax errors become problems at their line. */
export function parseYaml(text: string, file: string): PositionedYaml {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return { problems: doc.errors.map((e) => ({ file, line: counter.linePos(e.pos[0]).line, field: '', problem: `YAML: ${e.message.split('\n')[0]}` })) };
  }
  return { doc, counter };
}

/** Line (1-based) of the deepest node that exists along `path`; an unknown `key` is reported at the key itself. */
export function lineOf(doc: Document, counter: LineCounter, path: FieldPath, key?: string): number {
  let node: unknown = doc.contents;
  let offset = isNode(node) ? (node.range?.[0] ?? 0) : 0;
  for (const step of key === undefined ? path : [...path, key]) {
    if (!isNode(node) || !('items' in node)) break;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === step);
      if (!pair) break;
      if (step === key && isNode(pair.key)) offset = pair.key.range?.[0] ?? offset;
      next = pair.value;
    } else if (typeof step === 'number') {
      next = (node as { items: unknown[] }).items[step];
    }
    if (!isNode(next)) break;
    node = next;
    offset = next.range?.[0] ?? offset;
  }
  return counter.linePos(offset).line;
}

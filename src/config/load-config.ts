/**
 * @module load-config
 * Reads a YAML config, validates it, and maps every problem back to `FILE:LINE: field`.
 * The parsed document is kept so plugin options can be checked later with the same precision.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { configSchema, type Config } from './config-schema.ts';

export type FieldPath = readonly PropertyKey[];

export interface LoadedConfig {
  readonly file: string;
  readonly dir: string;
  readonly config: Config;
  /** Turns a schema failure at `prefix` into problems with file, line and field. */
  problems(issues: readonly z.core.$ZodIssue[], prefix?: FieldPath): ConfigProblem[];
}

export function formatField(path: FieldPath): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** Finds the line of the deepest node that exists along `path` (1-based). */
function lineOf(doc: Document, counter: LineCounter, path: FieldPath, key?: string): number {
  let node: unknown = doc.contents;
  let offset = isNode(node) ? (node.range?.[0] ?? 0) : 0;
  for (const step of [...path, ...(key === undefined ? [] : [key])]) {
    if (!isNode(node) || !('items' in node)) break;
    const items = (node as { items: unknown[] }).items;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === step);
      if (!pair) break;
      // an unknown key is reported at the key itself
      if (step === key && isNode(pair.key)) offset = pair.key.range?.[0] ?? offset;
      next = pair.value;
    } else if (typeof step === 'number') {
      next = items[step];
    }
    if (!isNode(next)) break;
    node = next;
    offset = next.range?.[0] ?? offset;
  }
  return counter.linePos(offset).line;
}

function issueProblems(file: string, doc: Document, counter: LineCounter, issues: readonly z.core.$ZodIssue[], prefix: FieldPath): ConfigProblem[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ file, line: lineOf(doc, counter, path, k), field: formatField([...path, k]), problem: 'unknown key' }));
    }
    if (issue.code === 'invalid_union') {
      // report the most specific branch message rather than zod's generic one
      const first = issue.errors.find((e) => e.length > 0)?.[0];
      if (first) return [{ file, line: lineOf(doc, counter, path), field: formatField(path), problem: first.message }];
    }
    return [{ file, line: lineOf(doc, counter, path), field: formatField(path), problem: issue.message }];
  });
}

/** Parses and validates config text; `file` is used for messages and relative paths. */
export function parseConfig(text: string, file: string): LoadedConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ file, line: counter.linePos(e.pos[0]).line, field: '', problem: `YAML: ${e.message.split('\n')[0]}` })));
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(issueProblems(file, doc, counter, result.error.issues, []));
  return {
    file,
    dir: dirname(resolve(file)),
    config: result.data,
    problems: (issues, prefix = []) => issueProblems(file, doc, counter, issues, prefix),
  };
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 1, field: '', problem: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
  return parseConfig(text, file);
}

/**
 * @module load-config
 * Reads a YAML config, validates it, and maps every problem back to `FILE:LINE: field`.
 * The parsed document is kept so plugin options can be checked later with the same precision.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { type FieldPath, formatField, lineOf, parseYaml } from '../util/yaml-location.ts';
import { configSchema, type Config } from './config-schema.ts';
import { didYouMean, knownKeys } from './did-you-mean.ts';

export type { FieldPath } from '../util/yaml-location.ts';

export interface LoadedConfig {
  readonly file: string;
  readonly dir: string;
  readonly config: Config;
  /**
   * Turns a schema failure at `prefix` into problems with file, line and field; given the schema
   * the issues came from, an unknown key names the nearest known one.
   */
  problems(issues: readonly z.core.$ZodIssue[], prefix?: FieldPath, schema?: z.core.$ZodType): ConfigProblem[];
}

function issueProblems(
  file: string,
  doc: Document,
  counter: LineCounter,
  issues: readonly z.core.$ZodIssue[],
  prefix: FieldPath,
  schema: z.core.$ZodType | undefined,
): ConfigProblem[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      return issue.keys.map((k) => {
        const near = didYouMean(k, known);
        return {
          file,
          line: lineOf(doc, counter, path, k),
          field: formatField([...path, k]),
          problem: near ? `unknown key; did you mean ${near}?` : 'unknown key',
        };
      });
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
  const yaml = parseYaml(text, file);
  if (yaml.problems) throw new ConfigError(yaml.problems);
  const { doc, counter } = yaml;
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(issueProblems(file, doc, counter, result.error.issues, [], configSchema));
  return {
    file,
    dir: dirname(resolve(file)),
    config: result.data,
    problems: (issues, prefix = [], schema = undefined) => issueProblems(file, doc, counter, issues, prefix, schema),
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

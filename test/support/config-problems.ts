/** What a config's text is refused with, for tests of the config schema and its parts. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load-config.ts';
import { ConfigError, formatProblem } from '../../src/errors.ts';

/** The problems parsing `text` (as f.yaml) finds, as `f.yaml:LINE: …` lines; fails the test when it is accepted. */
export function configProblems(text: string): string[] {
  try {
    parseConfig(text, 'f.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map(formatProblem);
  }
  assert.fail('expected a ConfigError');
}

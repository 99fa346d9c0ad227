/**
 * `check` without the machine's installed systemd units: another test run may be installing the
 * .deb (its flexscriptd.service) at this moment, which must not change what a test's check finds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runChecks as runChecksOnHost } from '../../src/cli/check.ts';

/** An empty unit root (`--unit-root`), removed after the test file. */
export const NO_UNITS = mkdtempSync(join(tmpdir(), 'fxs-no-units-'));
after(() => rmSync(NO_UNITS, { recursive: true, force: true }));

/** runChecks reading units below NO_UNITS unless told another root. */
export const runChecks: typeof runChecksOnHost = (config, o = {}) => runChecksOnHost(config, { unitRoot: NO_UNITS, ...o });

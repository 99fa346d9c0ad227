/** Paths of the test fixtures. */
import { join } from 'node:path';
import { REPO } from '../../src/lab/daemon-process.ts';

export const RECORDER = join(REPO, 'test/fixtures/plugins/recorder.ts');

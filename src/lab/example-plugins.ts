/**
 * @module example-plugins
 * The plugins section the demo and the benchmark run: the example plugins as an operator
 * would configure them.
 */
import { join } from 'node:path';
import { REPO } from './daemon-process.ts';

export interface ExamplePluginsOptions {
  /** Where the session-log plugin writes its records. */
  readonly sessionLog: string;
  /** Common-name patterns of the admins group (gets an extra route). */
  readonly admins: readonly string[];
  /** Refuse this common name with the deny-list plugin. */
  readonly deny?: string;
}

export function examplePluginsYaml(o: ExamplePluginsOptions): string {
  const dir = join(REPO, 'examples/plugins');
  const deny = o.deny
    ? `  - path: ${join(dir, 'deny-list.ts')}\n    options:\n      names: [${JSON.stringify(o.deny)}]\n      message: this laptop was reported lost\n`
    : '';
  return `plugins:
${deny}  - path: ${join(dir, 'office-routes.ts')}
    options:
      groups:
        - name: staff
          members: ["*"]
          routes: [10.20.0.0/16]
          dns: [10.20.0.53]
        - name: admins
          members: [${o.admins.map((a) => JSON.stringify(a)).join(', ')}]
          routes: [10.99.0.0/24]
  - path: ${join(dir, 'session-log.ts')}
    options:
      file: ${o.sessionLog}
`;
}

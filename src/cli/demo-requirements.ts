/**
 * @module demo-requirements
 * What `flexscript demo` runs besides Node.js, and the Debian package each comes from. setup.sh
 * installs exactly these packages (a test keeps its list and this one the same); the demo names
 * the missing ones and the command that installs them.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { openvpnBinary } from '../lab/openvpn-process.ts';

export interface DemoRequirement {
  /** The program the demo starts. */
  readonly program: string;
  /** The Debian (and Ubuntu) package that installs it. */
  readonly debianPackage: string;
  readonly why: string;
}

export const DEMO_REQUIREMENTS: readonly DemoRequirement[] = [
  { program: 'openvpn', debianPackage: 'openvpn', why: 'OpenVPN 2.6: the server and its clients' },
  { program: 'openssl', debianPackage: 'openssl', why: 'a throwaway certificate authority' },
  { program: 'setpriv', debianPackage: 'util-linux', why: 'starts the daemon as nobody' },
];

/** Debian keeps administrators' programs in sbin, which a user's PATH may lack. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Where a program is: OpenVPN where Debian installs it, the others on PATH or in sbin. */
function findProgram(program: string, path: string): string | undefined {
  const dirs = [...path.split(delimiter).filter(Boolean), ...SBIN];
  const candidates = program === 'openvpn' ? [openvpnBinary(), ...dirs.map((d) => join(d, program))] : dirs.map((d) => join(d, program));
  return candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The requirements this machine lacks. */
export function missingForDemo(path = process.env.PATH ?? '', find: (program: string, path: string) => string | undefined = findProgram): DemoRequirement[] {
  return DEMO_REQUIREMENTS.filter((r) => find(r.program, path) === undefined);
}

/** What the demo says when something is missing: what, why, and the one command that installs it. */
export function missingMessage(missing: readonly DemoRequirement[]): string {
  return [
    `flexscript demo needs ${missing.map((r) => `${r.program} (${r.why})`).join(', ')}. On Debian or Ubuntu, as root:`,
    `  apt-get install -y ${missing.map((r) => r.debianPackage).join(' ')}`,
    'In the source tree, `bash setup.sh` installs these and builds the product.',
  ].join('\n');
}

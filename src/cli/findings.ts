/**
 * @module findings
 * What a check found: problems fail `flexscript check`, warnings do not. Shared by the checks of
 * the config (check.ts) and of the installed systemd units (check-units.ts).
 */
export interface Findings {
  readonly problems: string[];
  readonly warnings: string[];
}

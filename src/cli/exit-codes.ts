/**
 * @module exit-codes
 * What `flexscript`'s exit status means, the same for every verb (docs/cli.md): scripts and
 * systemd can tell a typo on the command line from a broken config from a daemon that is down.
 */

export const EXIT = {
  /** Done. */
  ok: 0,
  /** The verb ran and failed (a client not found, a demo or bench run that failed, an I/O error). */
  failure: 1,
  /** The command line is wrong: an unknown verb or option, a missing or malformed argument. */
  usage: 2,
  /** The configuration cannot be used: it does not load, or `check` found problems. */
  config: 3,
  /** The running daemon (or OpenVPN's pass-through socket) cannot be reached. */
  unreachable: 4,
} as const;

/** The daemon or a socket it serves did not answer; the message says how to find out why. */
export class UnreachableError extends Error {}

/** Where an operator finds out why the daemon does not answer (under systemd it logs to the journal). */
export const WHY_UNREACHABLE = 'is it running? `systemctl status flexscriptd` says, and its log says why it stopped: `journalctl -u flexscriptd -e`';

/**
 * @module decision
 * The answer to an event, as the pipeline makes it, plugins hear it in `decided`, and sources
 * send it to OpenVPN.
 */
import type { VpnAddresses } from './client.ts';

export interface Decision {
  readonly verdict: 'accept' | 'deny';
  /** For the log: why the client was denied. */
  readonly reason?: string;
  /** For the client, where OpenVPN can pass it on. */
  readonly clientReason?: string;
  /** The plugin that denied (or failed). */
  readonly decidedBy?: string;
  /** Config lines for the client, in plugin order (client-connect only). */
  readonly config: readonly string[];
  /**
   * The addresses `config` gives the client (`ifconfig-push`, `ifconfig-ipv6-push`; the last of
   * each kind wins, as when OpenVPN reads a client config file): OpenVPN uses them instead of the
   * pool addresses in the connect's env. Read from each line as it enters the answer.
   */
  readonly addresses?: VpnAddresses;
  /** Groups the accepting plugins put the client in (user-pass-verify, client-connect), in plugin order, each once. */
  readonly groups?: readonly string[];
  /** The verified username an accepting plugin named (user-pass-verify), where it differs from the client's. */
  readonly username?: string;
}

/** What a plugin announces when it needs time (a second factor, an approval on a phone). */
export interface PendingAuth {
  /** Sent to the client, e.g. `CR_TEXT:E:Approve the login on your phone` or `OPEN_URL:https://...`. */
  readonly extra: string;
  /** Seconds OpenVPN and the client wait; also this handler's new time limit. */
  readonly timeout: number;
}

/** A question put to the client while its authentication waits (OpenVPN's CR_TEXT). */
export interface Challenge {
  /** Shown to the user, one line. */
  readonly text: string;
  /** Seconds to wait for the answer; also this handler's new time limit. */
  readonly timeout: number;
  /** Whether the client shows what the user types (a code), or hides it (a password). Default true. */
  readonly echo?: boolean;
}

/** Per-run hooks a source provides. */
export interface RunOptions {
  /** Tells OpenVPN a plugin needs time (management: client-pending-auth). */
  readonly onPending?: (auth: PendingAuth) => void | Promise<void>;
  /** Asks the client a question and resolves with its answer (management: CR_TEXT and CR_RESPONSE). */
  readonly challenge?: (challenge: Challenge, signal: AbortSignal) => Promise<string>;
}

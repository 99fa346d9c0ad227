/**
 * What a user-pass-verify handler is called with, for calling an authenticating plugin alone:
 * the event, and the context the pipeline gives, which keeps what the handler asked for (deny,
 * groups, a username, a pending announcement) in `out` for the test to read.
 */
import { createLogger } from '../../src/logger.ts';
import type { AuthContext, Challenge, Logger, PendingAuth, UserPassVerifyEvent } from '../../src/plugins/plugin-api.ts';

/** A user-pass-verify as hook mode hands it over: common name `c`, from `realAddress` port 1194. */
export function hookUserPassVerify(username: string, password: string, realAddress = '198.51.100.7'): UserPassVerifyEvent {
  return { name: 'user-pass-verify', instance: 'test', source: 'hook', env: {}, args: [], commonName: 'c', username, password, realAddress, realPort: 1194 };
}

/** What a handler did through its context. */
export interface AuthOutcome {
  /** The first deny (later ones lose, as in the pipeline); no `clientReason` key where none was given. */
  denied?: { reason: string; clientReason?: string };
  /** Groups added, in the order given. */
  readonly groups: string[];
  /** The last username set. */
  username?: string;
  /** The last pending announcement. */
  pending?: PendingAuth;
}

export interface FakeAuthOptions {
  /** The handler's logger; a silent one by default. */
  readonly log?: Logger;
  /** Answers a challenge; by default the client cannot be asked (the promise rejects). */
  readonly challenge?: (c: Challenge) => Promise<string>;
  /** Called at each pending announcement, after it is kept. */
  readonly onPending?: (p: PendingAuth) => void;
}

export function fakeAuthContext(o: FakeAuthOptions = {}): { ctx: AuthContext; out: AuthOutcome } {
  const out: AuthOutcome = { groups: [] };
  const ctx: AuthContext = {
    log: o.log ?? createLogger('silent'),
    signal: new AbortController().signal,
    state: undefined,
    deny: (reason, clientReason) => void (out.denied ??= { reason, ...(clientReason === undefined ? {} : { clientReason }) }),
    pending: (p) => {
      out.pending = p;
      o.onPending?.(p);
    },
    addGroups: (...groups) => void out.groups.push(...groups),
    setUsername: (username) => void (out.username = username),
    challenge: o.challenge ?? (() => Promise.reject(new Error('challenge() cannot reach this client'))),
  };
  return { ctx, out };
}

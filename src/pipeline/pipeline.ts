/**
 * @module pipeline
 * Runs an event through the plugins in configured order. Rules: any deny wins and stops the
 * chain; config lines are collected in order; each handler call has a time limit; a handler
 * that throws or times out denies that one client (for decision events) or is logged and
 * skipped (for notifications). Nothing a plugin does can crash the daemon.
 */
import { ErrorCode, FlexscriptError, PluginFailure, errorMessage } from '../errors.ts';
import { isDecisionEvent, type AnyEvent, type EventName } from '../events/event-map.ts';
import type { Logger } from '../logger.ts';
import { pluginCalls, type PluginCallMessage } from '../observe/channels.ts';
import type { LoadedPlugin } from '../plugins/load-plugins.ts';
import type { VpnAddresses } from '../core/client.ts';
import type { Decision, RunOptions } from '../core/decision.ts';
import type { ConnectContext, SettledEvent, Handler, LiveSession } from '../plugins/plugin-api.ts';
import { TimeLimitExceeded, withTimeout } from '../plugins/time-limit.ts';
import { joinGroups, stateOf, type ClientState, type Session } from '../sessions/session-table.ts';
import { checkGroupNames } from '../core/groups.ts';
import { checkConfigLine, lineAddress, pushLine } from '../util/config-lines.ts';

export type { Decision, RunOptions };

const ACCEPT: Decision = Object.freeze({ verdict: 'accept', config: Object.freeze([]) as readonly string[] });

export class Pipeline {
  /** Child loggers are made once: creating one per call is measurable under a storm. */
  readonly #logs: Map<LoadedPlugin, Logger>;

  constructor(
    readonly plugins: readonly LoadedPlugin[],
    log: Logger,
  ) {
    this.#logs = new Map(plugins.map((p) => [p, log.child({ plugin: p.name })]));
  }

  /** Does any plugin handle this event? Sources can skip work for events nobody wants. */
  handles(name: EventName): boolean {
    return this.plugins.some((p) => typeof p.instance[name] === 'function');
  }

  async run(event: AnyEvent, session?: Session, runOptions: RunOptions = {}): Promise<Decision> {
    const decision = isDecisionEvent(event.name);
    const config: string[] = [];
    const groups = new Set<string>();
    let addresses: VpnAddresses | undefined;
    let username: string | undefined;
    // a verifying plugin that called addGroups, even with none, decided the client's groups
    let groupsDecided = false;
    for (const plugin of this.plugins) {
      const handler = plugin.instance[event.name] as Handler<EventName> | undefined;
      if (typeof handler !== 'function') continue;
      const plog = this.#logs.get(plugin)!;
      const lines: string[] = [];
      const joined: string[] = [];
      let addedGroups = false;
      let named: string | undefined;
      // the addresses this plugin's lines give, read as each line enters (the last of a kind wins)
      let given: VpnAddresses | undefined;
      let denial: { reason: string; clientReason?: string } | undefined;
      let open = true;
      // traced on the plugin-call channel; nobody watching: no message is made
      const message: PluginCallMessage | undefined = pluginCalls.hasSubscribers ? { plugin: plugin.name, event: event.name } : undefined;
      const started = performance.now();
      try {
        const call = () =>
          withTimeout(plugin.timeoutMs, (signal, extend) => {
            const ctx: ConnectContext = {
              log: plog,
              signal,
              // made when a plugin first asks: most keep no state, and each Map costs a live session memory
              get state() {
                return (session ? stateOf(session, plugin.name) : undefined) as ClientState;
              },
              session,
              deny: (reason, clientReason) => {
                if (!open) return plog.warn({ event: event.name }, 'deny() after the handler finished is ignored');
                if (!decision) throw new Error(`deny() is not available on ${event.name}`);
                denial ??= { reason: String(reason), clientReason: clientReason === undefined ? undefined : String(clientReason) };
              },
              config: (line) => {
                if (!open) return plog.warn({ event: event.name }, 'config() after the handler finished is ignored');
                if (event.name !== 'client-connect') throw new Error(`config lines are only accepted on client-connect`);
                const checked = checkConfigLine(line);
                lines.push(checked);
                const address = lineAddress(checked);
                if (address) given = { ...given, ...address };
              },
              pending: (auth) => {
                if (!open) return plog.warn({ event: event.name }, 'pending() after the handler finished is ignored');
                if (event.name !== 'client-connect' && event.name !== 'user-pass-verify') throw new Error(`pending() is not available on ${event.name}`);
                const timeout = Number(auth?.timeout);
                if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3600) throw new Error('pending(): timeout must be 1 to 3600 seconds');
                const extra = String(auth.extra);
                extend(timeout * 1000);
                plog.info({ event: event.name, timeout }, 'authentication pending');
                void Promise.resolve(runOptions.onPending?.({ extra, timeout })).catch((err: unknown) =>
                  plog.warn({ err: errorMessage(err) }, 'OpenVPN did not take the pending notice'),
                );
              },
              challenge: async (c) => {
                if (!open) throw new Error('challenge() after the handler finished');
                if (event.name !== 'user-pass-verify') throw new Error(`challenge() is not available on ${event.name}`);
                if (!runOptions.challenge)
                  throw new FlexscriptError(
                    ErrorCode.CHALLENGE_UNAVAILABLE,
                    'challenge() cannot reach this client: in hook mode the user-pass-verify hook must run in ask mode, with a client-crresponse line (flexscript openvpn-config prints both)',
                  );
                const timeout = Number(c?.timeout);
                if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3600) throw new Error('challenge(): timeout must be 1 to 3600 seconds');
                // the answer may take the whole timeout; a little more to hear it
                extend(timeout * 1000 + 5000);
                plog.info({ event: event.name, timeout }, 'challenge sent to the client');
                return runOptions.challenge({ text: String(c.text), timeout, echo: c.echo !== false }, signal);
              },
              addGroups: (...names) => {
                if (!open) return plog.warn({ event: event.name }, 'addGroups() after the handler finished is ignored');
                if (event.name !== 'client-connect' && event.name !== 'user-pass-verify') throw new Error(`addGroups() is not available on ${event.name}`);
                joined.push(...checkGroupNames(names));
                addedGroups = true;
              },
              setUsername: (name) => {
                if (!open) return plog.warn({ event: event.name }, 'setUsername() after the handler finished is ignored');
                if (event.name !== 'user-pass-verify') throw new Error(`setUsername() is not available on ${event.name}`);
                if (typeof name !== 'string' || name.length === 0 || name.length > 256 || /[\u0000-\u001f\u007f]/.test(name))
                  throw new Error('setUsername(): a username is 1 to 256 characters without control characters');
                named = name;
              },
              push: (option) => {
                if (!open) return plog.warn({ event: event.name }, 'push() after the handler finished is ignored');
                if (event.name !== 'client-connect') throw new Error(`push is only accepted on client-connect`);
                lines.push(pushLine(option));
              },
            };
            return handler.call(plugin.instance, event, ctx as never);
          });
        await (message ? pluginCalls.tracePromise(() => this.#called(call(), message, started, () => denial !== undefined), message) : call());
      } catch (err) {
        const timedOut = err instanceof TimeLimitExceeded;
        const failure = new PluginFailure(timedOut ? ErrorCode.PLUGIN_TIMEOUT : ErrorCode.PLUGIN_FAILED, plugin.name, event.name, errorMessage(err), {
          cause: err,
        });
        plog.error({ code: failure.code, event: event.name, err: errorMessage(err) }, decision ? 'plugin failed; denying this client' : 'plugin failed');
        if (decision) {
          return { verdict: 'deny', reason: failure.message, decidedBy: plugin.name, config: [] };
        }
      } finally {
        open = false;
      }
      if (denial) {
        plog.info({ event: event.name, reason: denial.reason }, 'denied');
        return { verdict: 'deny', reason: denial.reason, clientReason: denial.clientReason, decidedBy: plugin.name, config: [] };
      }
      config.push(...lines);
      if (addedGroups) {
        if (event.name === 'user-pass-verify' && plugin.instance.verifiesUsernames !== true) {
          // only a plugin that checked the credentials says who the client is, and so its groups
          plog.debug({ event: event.name, groups: joined.length }, 'groups from a plugin that does not verify usernames are ignored');
        } else {
          for (const g of joined) groups.add(g);
          if (event.name === 'user-pass-verify') groupsDecided = true;
          // later plugins of this connect see them on the session
          if (session && event.name === 'client-connect') joinGroups(session, joined);
        }
      }
      if (given) addresses = { ...addresses, ...given };
      if (named !== undefined) {
        // as with groups: only a plugin that checked the credentials says who the client is
        if (plugin.instance.verifiesUsernames === true) username = named;
        else plog.debug({ event: event.name }, 'a username from a plugin that does not verify usernames is ignored');
      }
    }
    if (config.length === 0 && groups.size === 0 && !groupsDecided && username === undefined) return ACCEPT;
    return {
      verdict: 'accept',
      config,
      ...(addresses ? { addresses } : {}),
      ...(groups.size > 0 || groupsDecided ? { groups: [...groups] } : {}),
      ...(username !== undefined ? { username } : {}),
    };
  }

  /**
   * Gives every plugin with `decided` the final answer before OpenVPN gets it (accounting,
   * firewall sets). A failure on an accept turns it into a deny, and the plugins told of the
   * accept are told of the deny. Returns the decision to send.
   */
  async settle(event: SettledEvent, decision: Decision, session: LiveSession | undefined): Promise<Decision> {
    const told: LoadedPlugin[] = [];
    for (const plugin of this.plugins) {
      if (typeof plugin.instance.decided !== 'function') continue;
      const plog = this.#logs.get(plugin)!;
      try {
        await withTimeout(plugin.timeoutMs, () => plugin.instance.decided!(event, decision, session));
        told.push(plugin);
      } catch (err) {
        plog.error(
          { event: event.name, verdict: decision.verdict, err: errorMessage(err) },
          decision.verdict === 'accept' ? 'could not apply the accept; denying this client' : 'could not record the deny',
        );
        if (decision.verdict !== 'accept') continue;
        const denied: Decision = { verdict: 'deny', reason: `${plugin.name}: ${errorMessage(err)}`, decidedBy: plugin.name, config: [] };
        for (const earlier of told) {
          try {
            await withTimeout(earlier.timeoutMs, () => earlier.instance.decided!(event, denied, session));
          } catch (undoErr) {
            this.#logs.get(earlier)!.error({ event: event.name, err: errorMessage(undoErr) }, 'could not undo the accept');
          }
        }
        return this.settleRest(event, denied, session, plugin);
      }
    }
    return decision;
  }

  /** After a failed accept: the plugins after the failing one hear only the deny. */
  private async settleRest(event: SettledEvent, denied: Decision, session: LiveSession | undefined, failed: LoadedPlugin): Promise<Decision> {
    for (const plugin of this.plugins.slice(this.plugins.indexOf(failed) + 1)) {
      if (typeof plugin.instance.decided !== 'function') continue;
      try {
        await withTimeout(plugin.timeoutMs, () => plugin.instance.decided!(event, denied, session));
      } catch (err) {
        this.#logs.get(plugin)!.error({ event: event.name, err: errorMessage(err) }, 'could not record the deny');
      }
    }
    return denied;
  }

  /** Does any plugin want the final answers? */
  get settles(): boolean {
    return this.plugins.some((p) => typeof p.instance.decided === 'function');
  }

  /** Fills in a traced call's message before its end is published. */
  async #called(call: Promise<unknown>, message: PluginCallMessage, started: number, denied: () => boolean): Promise<void> {
    try {
      await call;
      message.outcome = denied() ? 'deny' : 'ok';
    } catch (err) {
      message.outcome = err instanceof TimeLimitExceeded ? 'timeout' : 'error';
      message.failure = errorMessage(err);
      throw err;
    } finally {
      message.ms = performance.now() - started;
    }
  }
}

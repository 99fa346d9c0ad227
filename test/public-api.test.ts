/**
 * The public API (`src/index.ts`, the package's `openvpn-flexscript` import) is the plugin API
 * and nothing else. The type checks below are compiled by `tsc --noEmit -p .` (a test of its
 * own in CI): each `@ts-expect-error` fails the type-check when the line it marks compiles, so
 * a context that grows a method it must not have, or a service that leaks the store, is caught.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientState, Handler, PluginHandlers, PluginInstance, RootActions, Services, SessionRecords } from '../src/index.ts';
import { definePlugin } from '../src/index.ts';
import type { Store } from '../src/store/store.ts';

test('src/index.ts exports exactly the plugin API at runtime', async () => {
  const api = await import('../src/index.ts');
  assert.deepEqual(Object.keys(api).sort(), ['ConfigLineError', 'ErrorCode', 'EVENT_NAMES', 'FlexscriptError', 'definePlugin'].sort());
});

/** Never called: it exists for the type-check. */
export function typeChecks(services: Services, records: SessionRecords, root: RootActions): void {
  const learn: Handler<'learn-address'> = (_event, ctx) => {
    // @ts-expect-error learn-address answers yes or no: it sends OpenVPN no config
    ctx.push('route 10.1.0.0 255.255.0.0');
    // @ts-expect-error nor raw config lines
    ctx.config('iroute 10.1.0.0 255.255.0.0');
    ctx.deny('refused');
    // @ts-expect-error the state may be missing here (an address of a client the daemon does not know)
    const state: ClientState = ctx.state;
    return state;
  };
  const disconnect: Handler<'client-disconnect'> = (_event, ctx) => {
    // present on client-disconnect: the state the plugin kept since client-connect
    const state: ClientState = ctx.state;
    // @ts-expect-error a disconnect cannot be refused
    ctx.deny('refused');
    return state;
  };
  const up: Handler<'up'> = (_event, ctx) => {
    // @ts-expect-error up is not a decision
    ctx.deny('refused');
  };
  const connect: Handler<'client-connect'> = (_event, ctx) => {
    ctx.push('route 10.1.0.0 255.255.0.0');
    ctx.config('iroute 10.1.0.0 255.255.0.0');
    ctx.pending({ extra: 'CR_TEXT:E:approve', timeout: 30 });
    ctx.deny('refused', 'not now');
  };
  const handlers: PluginHandlers = {
    'learn-address': learn,
    'client-disconnect': disconnect,
    up,
    'client-connect': connect,
    // @ts-expect-error a handler for an event OpenVPN does not have
    'client-connected': () => {},
  };
  const instance: PluginInstance = {
    ...handlers,
    // @ts-expect-error an unknown hook on the instance
    onConnect: () => {},
  };
  definePlugin({ name: 'typed', setup: () => instance });

  // @ts-expect-error the store itself is not reachable from services
  void services.store;
  // @ts-expect-error nor the root config's path: plugins get a read-only view of its rules
  void services.rootConfigPath;
  // @ts-expect-error the records service is no store: no history queries, no closing it
  const store: Store = records;
  // @ts-expect-error the root stage's reconcile and list belong to the daemon
  void root.reconcile;
  void store;
}

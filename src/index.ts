/**
 * @module openvpn-flexscript
 * The public API: what plugin authors import. Re-exports the plugin API only (definePlugin, the
 * handler, context and event types, the narrow services a plugin gets, the errors it may meet);
 * test/public-api.test.ts pins it.
 */
export type * from './plugins/plugin-api.ts';
export { definePlugin, EVENT_NAMES } from './plugins/plugin-api.ts';
export { ConfigLineError, ErrorCode, FlexscriptError } from './errors.ts';

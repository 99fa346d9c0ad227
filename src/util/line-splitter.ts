/**
 * @module line-splitter
 * The one bounded line splitter for byte streams (sockets, pipes, the management interface). The
 * code lives in src/root/line-splitter.ts because the root stage, which reads its pipe with it,
 * may import only src/root; everything else imports it from here.
 */
export { LineSplitter } from '../root/line-splitter.ts';

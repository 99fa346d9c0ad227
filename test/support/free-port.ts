/** A TCP port on loopback that is free now: the lab's own. */
export { freeLoopbackPort } from '../../src/lab/server-process.ts';

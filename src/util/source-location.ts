/**
 * @module source-location
 * `FILE:LINE: field: problem`, the one way the product names a place in a file. The code lives in
 * src/root/source-location.ts because the root stage, which formats its own config's problems,
 * may import only src/root; everything else imports it from here.
 */
export { formatProblem, sourceLocation } from '../root/source-location.ts';

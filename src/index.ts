/** netlane: game networking for Node.js. */
export * from './core/index.js';
export { NetlaneError, type NetlaneErrorCode } from './util/errors.js';
export { SeededRng, type Rng } from './util/rng.js';
export * from './crypto/index.js';

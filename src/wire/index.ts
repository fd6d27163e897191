/** Pure codecs: bytes <-> values. See docs/WIRE_FORMAT.md. */
export * from './errors.js';
export * from './reader.js';
export * from './writer.js';
export * from './header.js';
export * from './frames.js';
export * from './message-framing.js';
export * from './control.js';
export * from './in-band.js';

/** `netlane/testing`: the deterministic simulator and its helpers. */
export { SimNetwork, SimHost, SimSocket, PERFECT_LINK, type LinkConditions, type LinkStats, type Intercept, type SendTap, type LinkEnd, type TraceEntry, type WireStats } from './sim-network.js';
export { SimNat, type SimNatOptions, type SimNatStats, type SimNatMappingInfo, type NatMapping, type NatFiltering } from './sim-nat.js';
export { ManualClock } from './manual-clock.js';
export { SeededRng, type Rng } from '../util/rng.js';
export { seededCryptoProvider, seededHandshake, type SeededCryptoProviderOptions } from './crypto.js';

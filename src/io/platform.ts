import { NetlaneError } from '../util/errors.js';
import { SeededRng, type Rng } from '../util/rng.js';
import type { Clock } from './clock.js';
import type { Runtime } from './runtime.js';

// The runtime a facade uses when it is given none. The facades (src/api/) import no socket module: each
// entry point installs its platform's runtime when it loads, `netlane` the Node one (src/io/runtime.ts:
// node:dgram, sodium-native or node:crypto), `netlane/browser` the browser one (src/io/browser/: WebSocket
// gateways, @noble). So the browser build's module graph never reaches node:dgram.

/** Makes the platform's runtime, on its own clock or on `clock` (a facade's `clock` option). */
export type RuntimeFactory = (clock?: Clock) => Runtime;

let installed: RuntimeFactory | null = null;

/** Sets the platform's default runtime (an entry point does, once, when it loads; the first one stays). */
export function installPlatformRuntime(factory: RuntimeFactory): void {
  installed ??= factory;
}

/** The platform's runtime. Throws `ERR_NETLANE_INVALID_STATE` when no entry point installed one (a deep import): pass `runtime`. */
export function platformRuntime(clock?: Clock): Runtime {
  if (!installed) throw new NetlaneError('ERR_NETLANE_INVALID_STATE', 'no default runtime: import netlane or netlane/browser (which install one), or pass a runtime');
  return installed(clock);
}

/** A seeded generator from a runtime's seed (fake conditions). */
export function seededFrom(runtime: Runtime): Rng {
  return new SeededRng(runtime.randomSeed());
}

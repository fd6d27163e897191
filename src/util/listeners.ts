import { NetlaneError } from './errors.js';

/**
 * Listener lists for a facade's named events (`on` / `off`), fired by the facade where its seed API says
 * (inside `runCallbacks`). `M` maps each event name to its listener type.
 */
export class Listeners<M extends Record<string, (...args: never[]) => void>> {
  readonly #lists = new Map<keyof M, M[keyof M][]>();

  constructor(events: readonly (keyof M)[]) {
    for (const e of events) this.#lists.set(e, []);
  }

  /** Adds a listener. Throws ERR_NETLANE_INVALID_ARGUMENT for an event the facade does not have. */
  on<E extends keyof M>(event: E, fn: M[E]): void {
    const list = this.#lists.get(event);
    if (!list) throw new NetlaneError('ERR_NETLANE_INVALID_ARGUMENT', `unknown event ${String(event)}`);
    list.push(fn);
  }

  off<E extends keyof M>(event: E, fn: M[E]): void {
    const list = this.#lists.get(event);
    const i = list ? list.indexOf(fn) : -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  /** The listeners of one event, to call in order. */
  of<E extends keyof M>(event: E): readonly M[E][] {
    return (this.#lists.get(event) ?? []) as M[E][];
  }
}

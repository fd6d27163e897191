import { ConnectionState as S, type ConnectionState } from './types.js';

/**
 * The allowed transitions of a connection (docs/STATE_MACHINE.md is the same table in prose).
 * `Connection.#setState` is the only writer of the state and refuses anything not listed here.
 */
export const TRANSITIONS: ReadonlyMap<ConnectionState, readonly ConnectionState[]> = new Map<ConnectionState, readonly ConnectionState[]>([
  [S.None, [S.Connecting]],
  [S.Connecting, [S.FindingRoute, S.Connected, S.ClosedByPeer, S.ProblemDetectedLocally, S.FinWait]],
  [S.FindingRoute, [S.Connected, S.ClosedByPeer, S.ProblemDetectedLocally, S.FinWait]],
  [S.Connected, [S.ClosedByPeer, S.ProblemDetectedLocally, S.FinWait, S.Linger]],
  [S.Linger, [S.FinWait]],
  [S.ClosedByPeer, [S.FinWait]],
  [S.ProblemDetectedLocally, [S.FinWait]],
  [S.FinWait, [S.Dead]],
  [S.Dead, []],
]);

/** Whether the table allows `from -> to`; the one check `#setState` makes before changing state. */
export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return (TRANSITIONS.get(from) ?? []).includes(to);
}

/** State names for messages (internal-error text, logs): the numeric values alone do not say much. */
export const STATE_NAMES: ReadonlyMap<ConnectionState, string> = new Map<ConnectionState, string>([
  [S.None, 'None'],
  [S.Connecting, 'Connecting'],
  [S.FindingRoute, 'FindingRoute'],
  [S.Connected, 'Connected'],
  [S.ClosedByPeer, 'ClosedByPeer'],
  [S.ProblemDetectedLocally, 'ProblemDetectedLocally'],
  [S.FinWait, 'FinWait'],
  [S.Linger, 'Linger'],
  [S.Dead, 'Dead'],
]);

import { median, type RelayState } from './state.js';

// Relay choice: which relay carries this client's route (the primary) and which is kept warm (the
// backup), with hysteresis so that ping noise never makes the route flap (docs/RELAY.md).

/** How much better (ms and fraction) a relay must be, and for how long (ms), before the primary moves. */
export interface Hysteresis {
  readonly ms: number;
  readonly fraction: number;
  readonly holdMs: number;
}

export const DEFAULT_HYSTERESIS: Hysteresis = Object.freeze({ ms: 10, fraction: 0.1, holdMs: 10_000 });

/** Whether `candidateUs` beats `currentUs` by at least `marginUs` and by at least `fraction` of it (hysteresis). */
export function clearlyBetter(candidateUs: number, currentUs: number, marginUs: number, fraction: number): boolean {
  return candidateUs <= currentUs - marginUs && candidateUs <= currentUs * (1 - fraction);
}

/** A relay that can carry new paths: alive and not draining. */
export function usable(r: RelayState | null): r is RelayState {
  return r !== null && !r.dead && !r.draining;
}

/** What {@link choose} decided: the relays for the route, and relays to warm up (open a session on). */
export interface Choice {
  readonly primary: RelayState | null;
  readonly backup: RelayState | null;
  readonly warm: readonly RelayState[];
}

/**
 * Picks the primary and backup among `relays`. A failed primary gives way to an open backup, else to
 * the fastest relay that answers; a working primary gives way only to a relay clearly better for
 * `hyst.holdMs` (which is warmed up first). Updates each relay's `betterSinceUs`.
 */
export function choose(relays: readonly RelayState[], primary: RelayState | null, backup: RelayState | null, hyst: Hysteresis, now: number): Choice {
  const byRtt = relays.filter((r) => r.configured && usable(r) && r.rtts.length > 0).sort((a, b) => median(a.rtts) - median(b.rtts));
  const warm: RelayState[] = [];
  let next = primary;
  if (!usable(next)) next = usable(backup) && backup.phase === 'open' ? backup : (byRtt[0] ?? null);
  else if (next.phase === 'open') {
    const p = next.rtts.length ? median(next.rtts) : Infinity;
    let pick: RelayState | null = null;
    for (const r of byRtt) {
      if (r === next) continue;
      if (!clearlyBetter(median(r.rtts), p, hyst.ms * 1000, hyst.fraction)) {
        r.betterSinceUs = -1;
        continue;
      }
      if (r.betterSinceUs < 0) r.betterSinceUs = now;
      if (!pick && now - r.betterSinceUs >= hyst.holdMs * 1000 && r.phase === 'open') pick = r;
      else if (r.phase === 'none') warm.push(r);
    }
    if (pick) {
      pick.betterSinceUs = -1;
      next = pick;
    }
  }
  let nextBackup = usable(backup) && backup !== next ? backup : (byRtt.find((r) => r !== next) ?? null);
  if (nextBackup === next) nextBackup = null;
  return { primary: next, backup: nextBackup, warm };
}

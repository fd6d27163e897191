import type { Endpoint } from '../core/endpoint.js';
import { Result } from '../core/types.js';
import { encodeChannelMessage } from '../wire/in-band.js';
import type { PeerSession } from './session.js';

// Channels over lanes, for the relayed facades: channel c in 0..253 is lane c + 1, so that a loss on
// one channel never stalls another; lane 0 carries the in-band messages (docs/WIRE_FORMAT.md, "In-band
// messages"), among them any other int32 channel behind a 5-byte header.

/** Channels 0..253 have a lane each (lanes 1..254). */
export const LANE_CHANNELS = 254;
/** The smallest and largest channel numbers (int32). */
export const MIN_CHANNEL = -0x80000000;
export const MAX_CHANNEL = 0x7fffffff;

/** The lane of `channel`, or 0 when it rides lane 0 with a channel header. */
export function laneOf(channel: number): number {
  return channel >= 0 && channel < LANE_CHANNELS ? channel + 1 : 0;
}

/** Whether `channel` is an int32. */
export function validChannel(channel: number): boolean {
  return Number.isInteger(channel) && channel >= MIN_CHANNEL && channel <= MAX_CHANNEL;
}

/** Makes sure a connection has lane `lane` (lanes only grow; all equal priority and weight). Returns the lane count. */
export function ensureLane(endpoint: Endpoint, cid: number, lane: number, laneCount: number): number {
  if (lane < laneCount) return laneCount;
  const n = lane + 1;
  endpoint.configureLanes(cid, new Array<number>(n).fill(0), new Array<number>(n).fill(1));
  return endpoint.laneCount(cid);
}

/** One message on a session's connection: on its channel's lane, or on lane 0 behind a channel header. Returns the core's answer. */
export function sendOnChannel(endpoint: Endpoint, now: number, s: PeerSession<unknown>, channel: number, data: Uint8Array, flags: number): number {
  const lane = laneOf(channel);
  if (lane === 0) return endpoint.send(now, s.cid, encodeChannelMessage(channel, data), flags, 0);
  s.laneCount = ensureLane(endpoint, s.cid, lane, s.laneCount);
  return endpoint.send(now, s.cid, data, flags, lane);
}

/** Moves a connected session's queued messages onto its connection, as far as its send buffer takes them; true if some are left. */
export function writeOutbox(endpoint: Endpoint, now: number, s: PeerSession<unknown>): boolean {
  for (let m = s.outbox.peek(); m; m = s.outbox.peek()) {
    if (sendOnChannel(endpoint, now, s, m.channel, m.data, m.flags) === -Result.LimitExceeded) break; // the rest waits for room
    s.outbox.shift();
    s.outboxBytes -= m.data.length;
  }
  endpoint.flush(now, s.cid);
  return s.outbox.length > 0;
}

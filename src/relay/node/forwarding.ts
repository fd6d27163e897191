import type { BlockCipher } from '../../crypto/provider.js';
import type { ReplayWindow } from '../../util/replay-window.js';
import { readDataTag } from '../hop.js';
import { DOWN_HEADER_BYTES, RefuseCode, RelayMsg, SESSION_ID_BYTES, UP_HEADER_BYTES } from '../protocol.js';
import { US_PER_S, type RelayContext } from './context.js';
import type { Session, SessionTable } from './sessions.js';
import type { Trunk, TrunkTable } from './trunks.js';

/** The highest link id (a u16 on the wire). */
export const MAX_LINK_ID = 0xffff;
/** Every link is held by its two sessions, one side each. */
const SIDES_PER_LINK = 2;
/** Where a DATA_UP names its session. */
const UP_SESSION_ID_AT = 1;
/** Where a DATA_UP names its link (u16). */
const UP_LINK_ID_AT = UP_SESSION_ID_AT + SESSION_ID_BYTES;
/** Bits in a kilobit (rates are kbit/s: SI, as tickets carry them). */
const BITS_PER_KBIT = 1000;
const BITS_PER_BYTE = 8;
/** A session's rate bucket holds at least this much, bytes... */
const MIN_BURST_BYTES = 65_536;
/** ...or this long of its rate, µs, whichever is larger. */
const BURST_US = 100_000;
/** What {@link freshTag} returns for a tag made under another key (or for another link). */
export const FORGED_TAG = -1;
/** What {@link freshTag} returns for a tag whose sequence number the window has seen. */
export const STALE_TAG = -2;

/**
 * The sequence number of a DATA_UP's (or TRUNK_DATA's) tag under `key`, if it is fresh in `window` (not marked: the
 * caller marks it once the datagram is taken); {@link FORGED_TAG} or {@link STALE_TAG} otherwise. One AES block.
 */
export function freshTag(key: BlockCipher, window: ReplayWindow, data: Uint8Array, block: Uint8Array): number {
  const seq = readDataTag(key, data, block);
  if (seq < 0) return FORGED_TAG;
  return window.isNew(seq) ? seq : STALE_TAG;
}

/** A DATA_UP or TRUNK_DATA rewritten in place into DATA_DOWN (the 27-byte header's last 3 bytes) and sent to session `to` on its link `linkId`. */
export function sendDown(ctx: RelayContext, data: Uint8Array, linkId: number, to: Session): void {
  const out = data.subarray(UP_HEADER_BYTES - DOWN_HEADER_BYTES);
  out[0] = RelayMsg.DataDown;
  out[1] = linkId >>> 8;
  out[2] = linkId & 0xff;
  to.downPackets++;
  to.downBytes += out.length - DOWN_HEADER_BYTES;
  ctx.out(out, to.port, to.address);
}

/** A session that gets a new link is taken as seen at most this share of the idle timeout ago. */
const LINKED_IDLE_SHARE = 0.5;

/**
 * One side of a link: the session at the other end and the link's id on that side, or (over a trunk to another relay
 * of the fleet) the trunk and the other relay's id of the link there; and whether this side asked for the link itself.
 */
export interface Link {
  /** The session at the other end, or null when the link runs over {@link trunk}. */
  readonly peer: Session | null;
  /** The link's id on the other session, or the other relay's id of the link on the trunk. */
  readonly peerLinkId: number;
  /** This side sent the link request (it knew the other's token); otherwise it consented by a permit or an answer, and a later permit set without the peer cuts the link. */
  readonly asked: boolean;
  /** The trunk the link runs over, and this relay's id of the link on it (-1 for a link between two sessions here). */
  readonly trunk: Trunk | null;
  readonly trunkLinkId: number;
  /** Over a trunk, consented to here: the requester's peer id as the other relay proved it (what consent is checked against). */
  readonly remotePeerId: bigint | null;
  /**
   * Consented to by a LINK_ANSWER: its sealed counter (-1 otherwise). A permit set sent before that answer (a lower
   * counter), arriving after it, does not cut the link: only a newer set without the peer withdraws the consent.
   */
  readonly consentedAt: number;
}

/** A rate cap in kbit/s as bytes per µs, the unit of a session's rate bucket. */
export function rateBytesPerUs(kbps: number): number {
  return (kbps * BITS_PER_KBIT) / BITS_PER_BYTE / US_PER_S;
}

/** The size of a rate bucket (bytes) for `bytesPerUs`: 100 ms of the rate or 64 KiB, whichever is larger. */
export function rateBurstBytes(bytesPerUs: number): number {
  return Math.max(MIN_BURST_BYTES, bytesPerUs * BURST_US);
}

/**
 * Links between sessions and the forwarding path (docs/RELAY.md "Links and forwarding"). A DATA_UP from a session's
 * validated address, on one of its links, within its rate, is rewritten in place into a DATA_DOWN and sent from the
 * received buffer: no copy, no allocation, no closure per forwarded datagram.
 */
export class Forwarder {
  readonly #ctx: RelayContext;
  readonly #sessions: SessionTable;
  readonly #trunks: TrunkTable;
  readonly #maxLinks: number;
  readonly #idleUs: number;
  /** Scratch for a DATA_UP's decrypted sequence tag. */
  readonly #block = new Uint8Array(16);

  constructor(ctx: RelayContext, sessions: SessionTable, trunks: TrunkTable, maxLinksPerSession: number, idleTimeoutUs: number) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#trunks = trunks;
    this.#maxLinks = Math.min(maxLinksPerSession, MAX_LINK_ID);
    this.#idleUs = idleTimeoutUs;
  }

  /** Links of this relay's sessions, each counted once: between two sessions here, or over a trunk to another relay. */
  linkCount(): number {
    let local = 0;
    let trunk = 0;
    for (const s of this.#sessions.values()) {
      for (const l of s.links) {
        if (l?.trunk) trunk++;
        else if (l) local++;
      }
    }
    return local / SIDES_PER_LINK + trunk;
  }

  /**
   * A DATA_UP (`data[0]` is its type): forwarded as a DATA_DOWN to the linked session, or dropped and counted.
   * Checked in order: the session, the sequence tag (one AES block) against the session's replay window, the
   * session's address (a fresh datagram from another one is challenged), the link, the rate.
   */
  forward(now: number, address: string, port: number, data: Uint8Array): void {
    const stats = this.#ctx.stats;
    if (data.length <= UP_HEADER_BYTES) {
      stats.malformed++;
      return;
    }
    const s = this.#sessions.named(now, address, port, data, UP_SESSION_ID_AT);
    if (!s) return;
    const seq = freshTag(s.keys.data, s.dataWindow, data, this.#block);
    if (seq < 0) {
      if (seq === STALE_TAG) stats.replayed++;
      else stats.unauthenticated++;
      return;
    }
    if (s.port !== port || s.address !== address) {
      // A fresh datagram of the session from elsewhere: challenged, not forwarded, and its number not used up.
      this.#sessions.unvalidated(now, s, address, port, data.length, seq);
      return;
    }
    s.lastSeenUs = now;
    s.dataWindow.mark(seq);
    const link = s.links[((data[UP_LINK_ID_AT] as number) << 8) | (data[UP_LINK_ID_AT + 1] as number)];
    if (!link) {
      stats.noLink++;
      return;
    }
    const n = data.length - UP_HEADER_BYTES;
    if (now > s.tokensAtUs) {
      s.tokens = Math.min(s.burst, s.tokens + (now - s.tokensAtUs) * s.bytesPerUs);
      s.tokensAtUs = now;
    }
    if (s.tokens < n) {
      stats.rateLimited++;
      return;
    }
    s.tokens -= n;
    stats.forwardedPackets++;
    stats.forwardedBytes += n;
    s.upPackets++;
    s.upBytes += n;
    if (link.trunk) {
      // To another relay of the fleet: the 27-byte header becomes TRUNK_DATA's, in place.
      this.#trunks.sendData(link.trunk, link.peerLinkId, data);
      return;
    }
    const peer = link.peer as Session;
    // Rewrite the up header into the 3-byte down header in place: no copy of the payload.
    sendDown(this.#ctx, data, link.peerLinkId, peer);
  }

  /** The id on `s`'s side of the link between `s` and `t`, or -1 if they share none. */
  linkOf(s: Session, t: Session): number {
    for (let i = 0; i < s.links.length; i++) if (s.links[i]?.peer === t) return i;
    return -1;
  }

  /** Links two sessions that both consented (`s` asked; `t` too when `tAsked`). Returns the link id on `s`'s side and on `t`'s, or a refusal code. */
  join(s: Session, t: Session, now: number, tAsked = false, tConsentedAt = -1): { id: number; peerId: number } | number {
    const have = this.linkOf(s, t);
    if (have >= 0) return { id: have, peerId: (s.links[have] as Link).peerLinkId };
    if (s.linkCount >= this.#maxLinks || t.linkCount >= this.#maxLinks) return RefuseCode.LinkLimit;
    const a = freeSlot(s.links);
    const b = freeSlot(t.links);
    s.links[a] = { peer: t, peerLinkId: b, asked: true, trunk: null, trunkLinkId: -1, remotePeerId: null, consentedAt: -1 };
    t.links[b] = { peer: s, peerLinkId: a, asked: tAsked, trunk: null, trunkLinkId: -1, remotePeerId: null, consentedAt: tConsentedAt };
    s.linkCount++;
    t.linkCount++;
    linkedNow(s, now, this.#idleUs);
    linkedNow(t, now, this.#idleUs);
    this.#ctx.stats.linksCreated++;
    return { id: a, peerId: b };
  }

  /** Cuts a link of `s`, both sides (over a trunk, the other relay is told). */
  cut(s: Session, id: number): void {
    const l = s.links[id];
    if (!l) return;
    this.#otherSide(l);
    s.links[id] = undefined;
    s.linkCount--;
    this.#ctx.stats.linksCut++;
  }

  /** Cuts every link of a session that is going: its peers forget their side. */
  unlink(s: Session): void {
    for (const l of s.links) if (l) this.#otherSide(l);
    s.links.length = 0;
    s.linkCount = 0;
  }

  /** The other side of a link that goes: the other session forgets it, or the trunk's other relay is told. */
  #otherSide(l: Link): void {
    if (l.trunk) this.#trunks.release(l.trunk, l.trunkLinkId);
    else if (l.peer) {
      l.peer.links[l.peerLinkId] = undefined;
      l.peer.linkCount--;
    }
  }
}

/** A session that gets a new link is taken as seen at most half its idle timeout ago (a link is worth keeping it a while). */
export function linkedNow(s: Session, now: number, idleUs: number): void {
  s.lastSeenUs = Math.max(s.lastSeenUs, now - idleUs * LINKED_IDLE_SHARE);
}

/** The first free slot of a link table (a session's or a trunk's). */
export function freeSlot(links: readonly unknown[]): number {
  for (let i = 0; i < links.length; i++) if (!links[i]) return i;
  return links.length;
}

import { derivePeerId } from '../../crypto/identity.js';
import { linkProofSigned } from '../hop.js';
import { OFFER_LIFETIME_US, RefuseCode, type RelayControl } from '../protocol.js';
import { US_PER_S, type RelayContext } from './context.js';
import type { Forwarder } from './forwarding.js';
import type { Offer, Session, SessionTable } from './sessions.js';
import type { Trunk, TrunkTable } from './trunks.js';

/** Offers waiting at one target, at most: more are refused with BUSY, and never take a link slot. */
const MAX_OFFERS_PER_TARGET = 16;
/** Peer ids one session permits, at most. */
const MAX_PERMITS = 256;
/** A waiting offer is told to its target again, on the requester's retries, at most this often, µs (it may have been lost). */
const OFFER_RESEND_US = 1_000_000;
/** Offer ids are u16 on the wire, 0 unused. */
const MAX_OFFER_ID = 0xffff;

/**
 * Links by consent (docs/RELAY.md "Links"). A session asks for a link with the target's route token and
 * proves its peer id with its key (checked once per session, within a budget). The link exists at once when
 * the target permitted that peer id, or asked for the requester itself (both ask); otherwise the target gets
 * an offer naming the requester's proven peer id (and ticket user), which it accepts or refuses. Offers are
 * bounded per target and budgeted per requester; they hold no link slot, and nothing is forwarded to a session
 * on a link it did not consent to.
 */
export class LinkBroker {
  readonly #ctx: RelayContext;
  readonly #sessions: SessionTable;
  readonly #forwarder: Forwarder;
  readonly #trunks: TrunkTable;
  readonly #relayPublic: Uint8Array;
  readonly #linkRequestsPerS: number;

  constructor(ctx: RelayContext, sessions: SessionTable, forwarder: Forwarder, trunks: TrunkTable, relayPublic: Uint8Array, linkRequestsPerS: number) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#forwarder = forwarder;
    this.#trunks = trunks;
    this.#relayPublic = relayPublic;
    this.#linkRequestsPerS = linkRequestsPerS;
  }

  /** A LINK_REQUEST from `s`. */
  request(now: number, s: Session, m: Extract<RelayControl, { type: 'linkRequest' }>): void {
    const stats = this.#ctx.stats;
    const fail = (code: number): void => {
      stats.linkRefused++;
      this.#sessions.send(s, { type: 'linkFailed', requestId: m.requestId, code });
    };
    const t = this.#sessions.byToken(m.token);
    if (!t || t === s) return fail(RefuseCode.BadRoute);
    const have = this.#forwarder.linkOf(s, t);
    if (have >= 0) return this.#sessions.send(s, { type: 'linkOk', requestId: m.requestId, linkId: have });
    const unproven = this.#prove(now, s, m);
    if (unproven !== 0) return fail(unproven);
    // Consent: the target permitted this peer, or asked for the requester itself (an offer from it waits here).
    const mutual = offerFrom(s, t);
    if (mutual || t.permits.has(m.peerId)) {
      if (mutual) s.offers.delete(mutual.id);
      const joined = this.#forwarder.join(s, t, now, mutual !== undefined);
      if (typeof joined === 'number') {
        if (mutual) this.#sessions.send(t, { type: 'linkFailed', requestId: mutual.requestId, code: joined });
        return fail(joined);
      }
      this.#sessions.send(s, { type: 'linkOk', requestId: m.requestId, linkId: joined.id });
      if (mutual) this.#sessions.send(t, { type: 'linkOk', requestId: mutual.requestId, linkId: joined.peerId });
      return;
    }
    // An offer to the target. A retry while one waits only updates the request it answers: no answer now,
    // the requester keeps retrying until the target answers or the offer expires.
    const waiting = offerFrom(t, s);
    if (waiting) {
      waiting.requestId = m.requestId;
      // The offer may have been lost on its way: told again, at most once a second.
      if (now - waiting.sentUs >= OFFER_RESEND_US) {
        waiting.sentUs = now;
        this.#sessions.send(t, { type: 'linkOffer', offerId: waiting.id, peerId: m.peerId, user: s.user ?? '' });
      }
      return;
    }
    if (t.offers.size >= MAX_OFFERS_PER_TARGET || !this.#take(now, s)) {
      stats.offersBusy++;
      return fail(RefuseCode.Busy);
    }
    const o: Offer = { id: nextOfferId(t), from: s, remote: null, requestId: m.requestId, expiresUs: now + OFFER_LIFETIME_US, sentUs: now };
    t.offers.set(o.id, o);
    stats.offers++;
    this.#sessions.send(t, { type: 'linkOffer', offerId: o.id, peerId: m.peerId, user: s.user ?? '' });
  }

  /**
   * The requester's identity (once per session): its key derives the peer id, and it signed this session's binding.
   * Returns 0, or the refusal code (BUSY past the session's budget, BAD_PROOF).
   */
  #prove(now: number, s: Session, m: { readonly peerId: bigint; readonly publicKey: Uint8Array; readonly proof: Uint8Array }): number {
    if (s.peerId === m.peerId) return 0;
    const stats = this.#ctx.stats;
    if (!this.#take(now, s)) return RefuseCode.Busy;
    stats.signatureChecks++;
    if (derivePeerId(this.#ctx.provider, m.publicKey) !== m.peerId || !this.#ctx.provider.verify(m.publicKey, linkProofSigned(this.#relayPublic, s.keys.binding), m.proof)) {
      stats.linkProofRefused++;
      return RefuseCode.BadProof;
    }
    s.peerId = m.peerId;
    return 0;
  }

  /**
   * A LINK_REMOTE from `s`: a link to a session on another relay of the fleet, over the trunk to it (docs/RELAY.md
   * "Trunks"). The requester's identity is proven here, as for LINK_REQUEST; the other relay applies the consent rules.
   */
  remote(now: number, s: Session, m: Extract<RelayControl, { type: 'linkRemote' }>): void {
    const unproven = this.#prove(now, s, m);
    if (unproven !== 0) {
      this.#ctx.stats.linkRefused++;
      this.#sessions.send(s, { type: 'linkFailed', requestId: m.requestId, code: unproven });
      return;
    }
    this.#trunks.ask(now, s, m);
  }

  /**
   * A T_LINK_REQUEST over trunk `tr`: a session on the other relay (its peer id proven there) asks for a link to the
   * session `m.token` names here. Consent as for a local request: a PERMIT links at once, otherwise the target gets an
   * offer naming the requester's peer id, which it accepts or refuses. The other relay hears T_LINK_OK or T_LINK_FAILED.
   */
  trunkRequest(now: number, tr: Trunk, m: Extract<RelayControl, { type: 'trunkLinkRequest' }>): void {
    const stats = this.#ctx.stats;
    const fail = (code: number): void => {
      stats.linkRefused++;
      this.#trunks.send(tr, { type: 'trunkLinkFailed', linkId: m.linkId, code });
    };
    const t = this.#sessions.byToken(m.token);
    if (!t) return fail(RefuseCode.BadRoute);
    if (t.permits.has(m.peerId)) {
      const code = this.#trunks.accept(now, tr, t, m.linkId, m.peerId);
      if (code !== 0) fail(code);
      return;
    }
    const waiting = [...t.offers.values()].find((o) => o.remote?.trunk === tr && o.remote.linkId === m.linkId);
    if (waiting) {
      if (now - waiting.sentUs >= OFFER_RESEND_US) {
        waiting.sentUs = now;
        this.#sessions.send(t, { type: 'linkOffer', offerId: waiting.id, peerId: m.peerId, user: m.user });
      }
      return;
    }
    if (t.offers.size >= MAX_OFFERS_PER_TARGET) {
      stats.offersBusy++;
      return fail(RefuseCode.Busy);
    }
    const o: Offer = { id: nextOfferId(t), from: null, remote: { trunk: tr, linkId: m.linkId, peerId: m.peerId, user: m.user }, requestId: 0, expiresUs: now + OFFER_LIFETIME_US, sentUs: now };
    t.offers.set(o.id, o);
    stats.offers++;
    this.#sessions.send(t, { type: 'linkOffer', offerId: o.id, peerId: m.peerId, user: m.user });
  }

  /** A trunk went: the offers made over it are forgotten (nobody is left to answer). */
  trunkGone(tr: Trunk): void {
    for (const s of this.#sessions.values()) for (const o of s.offers.values()) if (o.remote?.trunk === tr) s.offers.delete(o.id);
  }

  /** A LINK_ANSWER from the target of an offer: the link, or a refusal the requester hears. */
  answer(now: number, t: Session, m: Extract<RelayControl, { type: 'linkAnswer' }>, counter: number): void {
    const o = t.offers.get(m.offerId);
    // Expired, answered already, or another offer under that id than the one answered (the peer id says which).
    if (!o || offerPeerId(o) !== m.peerId) return;
    t.offers.delete(o.id);
    this.#settle(now, t, o, m.accept, counter);
  }

  /**
   * A PERMIT: peer ids whose link requests `t` accepts at once. Offers waiting from them are accepted now. When
   * the set is complete, links `t` consented to (it did not ask for them) with peers it no longer names are cut:
   * consent ends when the peer is closed. A link `t` asked for ends with UNLINK.
   */
  permit(now: number, t: Session, m: Extract<RelayControl, { type: 'permit' }>, counter: number): void {
    // Sets are ordered by their sealed counters: a part of an older set, arriving late, changes nothing.
    if (counter < t.permitsFrom) return;
    if (m.reset) {
      t.permits.clear();
      t.permitsFrom = counter;
    }
    for (const id of m.peerIds) {
      if (t.permits.size >= MAX_PERMITS) {
        this.#ctx.stats.permitsDropped++;
        break;
      }
      t.permits.add(id);
    }
    if (m.complete) {
      for (let i = 0; i < t.links.length; i++) {
        const l = t.links[i];
        const peerId = l ? (l.peer ? l.peer.peerId : l.remotePeerId) : null;
        // A set older than the answer that consented (sent before it, overtaken on the way) withdraws nothing.
        if (l && !l.asked && counter > l.consentedAt && (peerId === null || !t.permits.has(peerId))) this.#forwarder.cut(t, i);
      }
    }
    for (const o of [...t.offers.values()]) {
      const peerId = offerPeerId(o);
      if (peerId !== null && t.permits.has(peerId)) {
        t.offers.delete(o.id);
        this.#settle(now, t, o, true);
      }
    }
  }

  /** Forgets expired offers (the reap scan). */
  expire(now: number): void {
    for (const s of this.#sessions.values()) for (const o of s.offers.values()) if (o.expiresUs <= now) s.offers.delete(o.id);
  }

  /** Settles an offer; `answeredAt`: the sealed counter of the LINK_ANSWER that did (-1: a permit did). */
  #settle(now: number, t: Session, o: Offer, accept: boolean, answeredAt = -1): void {
    const remote = o.remote;
    if (remote) {
      if (!this.#trunks.alive(remote.trunk)) return; // the trunk went, and the request with it
      if (!accept) this.#ctx.stats.offersRefused++;
      const code = accept ? this.#trunks.accept(now, remote.trunk, t, remote.linkId, remote.peerId, answeredAt) : RefuseCode.NotAccepted;
      if (code !== 0) this.#trunks.send(remote.trunk, { type: 'trunkLinkFailed', linkId: remote.linkId, code });
      return;
    }
    const from = o.from;
    if (!from || this.#sessions.byId(from.id, 0) !== from) return; // the requester's session is gone
    if (!accept) {
      this.#ctx.stats.offersRefused++;
      this.#sessions.send(from, { type: 'linkFailed', requestId: o.requestId, code: RefuseCode.NotAccepted });
      return;
    }
    const joined = this.#forwarder.join(from, t, now, false, answeredAt);
    if (typeof joined === 'number') this.#sessions.send(from, { type: 'linkFailed', requestId: o.requestId, code: joined });
    else this.#sessions.send(from, { type: 'linkOk', requestId: o.requestId, linkId: joined.id });
  }

  /** Takes one unit of a session's link request budget (proof checks and offers). */
  #take(now: number, s: Session): boolean {
    const rate = this.#linkRequestsPerS;
    if (now > s.linkTokensAtUs) {
      s.linkTokens = Math.min(rate, s.linkTokens + ((now - s.linkTokensAtUs) * rate) / US_PER_S);
      s.linkTokensAtUs = now;
    }
    if (s.linkTokens < 1) return false;
    s.linkTokens -= 1;
    return true;
  }
}

/** The peer id an offer names: the requester's, proven here or by the other relay of its trunk. */
function offerPeerId(o: Offer): bigint | null {
  return o.remote ? o.remote.peerId : (o.from?.peerId ?? null);
}

/** The offer from `from` waiting at `target`, if any. */
function offerFrom(target: Session, from: Session): Offer | undefined {
  for (const o of target.offers.values()) if (o.from === from) return o;
  return undefined;
}

function nextOfferId(t: Session): number {
  let id = t.nextOfferId;
  while (t.offers.has(id)) id = (id % MAX_OFFER_ID) + 1;
  t.nextOfferId = (id % MAX_OFFER_ID) + 1;
  return id;
}

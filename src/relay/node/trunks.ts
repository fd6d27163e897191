import { bytesEqual, type KeyExchangePair } from '../../crypto/provider.js';
import { toHex } from '../../util/bytes.js';
import { ReplayWindow } from '../../util/replay-window.js';
import { TRUNK_ID_AT, TRUNK_NONCE_BYTES, encodeTrunkHello, encodeTrunkOk, openTrunk, parseTrunkHello, parseTrunkOk, sealTrunk, trunkHelloAuthentic, trunkKeys, trunkOkAuthentic, trunkSealedCounter, writeDataTag, type TrunkKeys } from '../hop.js';
import { RefuseCode, RelayMsg, SESSION_ID_BYTES, UP_HEADER_BYTES, addressKey, type RelayAddress, type RelayControl } from '../protocol.js';
import { readU32, type RelayContext } from './context.js';
import type { Fleet } from './fleet.js';
import { STALE_TAG, freeSlot, freshTag, linkedNow, sendDown } from './forwarding.js';
import type { Session, SessionTable } from './sessions.js';

// Trunks (docs/RELAY.md "Trunks: two-hop routes"): one session between two relays of a fleet, authenticated with
// their static keys, that carries every link between a session on one and a session on the other. Sans-IO like
// the rest of the node: inputs from handleDatagram, timers from the reap scan, output through the context's sink.

/** Each end of an open trunk sends a keepalive this often, µs. */
export const TRUNK_KEEPALIVE_US = 1_000_000;
/** A trunk nothing authentic came on for this long is gone, with its links, µs. */
export const TRUNK_SILENCE_US = 3_500_000;
/** A trunk without links for this long is closed, µs. */
export const TRUNK_IDLE_US = 30_000_000;
/** TRUNK_HELLO is sent again this often, up to {@link TRUNK_HELLO_TRIES} times, µs. */
export const TRUNK_HELLO_RETRY_US = 250_000;
export const TRUNK_HELLO_TRIES = 8;
/** After a hello nobody answered, link requests for that relay are answered NO_TRUNK for this long, µs. */
export const TRUNK_UNREACHABLE_US = 2_000_000;
/** A link request naming a relay the registry does not list waits this long for a new read of it, then gets NO_TRUNK, µs. */
export const TRUNK_UNKNOWN_WAIT_US = 1_500_000;
/** A relay found unknown is remembered as such this long (its requests answered NO_TRUNK at once after the wait), µs. */
const TRUNK_UNKNOWN_KEPT_US = 10_000_000;
/** An answered hello whose opener never confirms the trunk is forgotten after this, µs. */
const TRUNK_UNCONFIRMED_US = 10_000_000;
/** Hellos from unknown keys held while the registry is read (a flood of them is refused, not held). */
const MAX_HELD_HELLOS = 16;
/** Link ids on a trunk are u16 on the wire. */
const MAX_TRUNK_LINKS = 0xffff;
/** Where TRUNK_DATA names the receiver's link (u16). */
const DATA_LINK_AT = TRUNK_ID_AT + SESSION_ID_BYTES;

/** One link on a trunk, at this end: the session here, its link id for it, and the other relay's id of it. */
export interface TrunkLink {
  readonly session: Session;
  /** The session's link id, -1 while the other relay has not answered. */
  sessionLinkId: number;
  /** The other relay's id of the link, -1 while it has not answered. */
  peerLinkId: number;
  /** This end asked (its session sent LINK_REMOTE) and waits for the answer. */
  asking: boolean;
  /** The asking session's target token at the other relay (a retry finds its request by it), and the request to answer. */
  readonly token: Uint8Array | null;
  requestId: number;
}

/** A trunk to another relay of the fleet. */
export interface Trunk {
  readonly idHi: number;
  readonly idLo: number;
  /** This end's id of the trunk: the other relay names it in every frame. */
  readonly id: Uint8Array;
  /** The other end's id (the opener learns it from TRUNK_OK). */
  peerTrunkId: Uint8Array;
  /** The other relay's static key, and its hex form (the table's key). */
  readonly publicKey: Uint8Array;
  readonly keyName: string;
  readonly address: string;
  readonly port: number;
  /** This end sent the hello. */
  readonly opener: boolean;
  /** The opener got TRUNK_OK; the answerer got an authentic frame under the new keys. Only an open trunk carries links. */
  open: boolean;
  readonly nonce: Uint8Array;
  /** The answerer: the hello's nonce (a repeat gets the same answer). */
  readonly peerNonce: Uint8Array | null;
  /** What a repeat sends again: the hello (opener) or the answer (answerer). */
  first: Uint8Array;
  keys: TrunkKeys | null;
  outCounter: number;
  dataSeq: number;
  readonly inWindow: ReplayWindow;
  readonly dataWindow: ReplayWindow;
  readonly links: (TrunkLink | undefined)[];
  linkCount: number;
  readonly createdUs: number;
  lastHeardUs: number;
  keepaliveSentUs: number;
  keepaliveSeq: number;
  helloSentUs: number;
  helloTries: number;
  idleSinceUs: number;
}

/** What the trunk table needs of the node's link broker. */
export interface TrunkHost {
  /** A T_LINK_REQUEST: a session on the other relay asks for a link to a session here (consent is the broker's). */
  linkRequest(now: number, t: Trunk, m: Extract<RelayControl, { type: 'trunkLinkRequest' }>): void;
  /** A trunk went: offers made over it are forgotten. */
  gone(t: Trunk): void;
}

/** The trunks of a relay node: opening and answering them, their sealed messages and data, their links and their timers. */
export class TrunkTable {
  readonly #ctx: RelayContext;
  readonly #sessions: SessionTable;
  readonly #fleet: Fleet | null;
  readonly #key: KeyExchangePair;
  readonly #maxLinks: number;
  readonly #idleUs: number;
  /** Every trunk, by the low 32 bits of this end's id (the high ones are checked). */
  readonly #byId = new Map<number, Trunk>();
  /** The trunk in use (or being opened) per other relay, by its key. */
  readonly #byKey = new Map<string, Trunk>();
  /** Answered hellos waiting for the opener to confirm them, per other relay (one each). */
  readonly #waiting = new Map<string, Trunk>();
  /** The static X25519 secret with each relay met (computed once). */
  readonly #secrets = new Map<string, Uint8Array>();
  /** Relays whose hello went unanswered, until when link requests for them are refused at once (µs). */
  readonly #unreachable = new Map<string, number>();
  /** Relays (`host:port`) link requests named that the registry did not list, since when (µs). */
  readonly #unknown = new Map<string, number>();
  readonly #block = new Uint8Array(16);
  /** Hellos from keys not in the member list, held until the registry read they asked for answers. */
  #held: { readonly address: string; readonly port: number; readonly data: Uint8Array }[] = [];
  host: TrunkHost = { linkRequest: () => undefined, gone: () => undefined };

  constructor(ctx: RelayContext, sessions: SessionTable, fleet: Fleet | null, key: KeyExchangePair, maxLinksPerSession: number, idleTimeoutUs: number) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#fleet = fleet;
    this.#key = key;
    this.#maxLinks = maxLinksPerSession;
    this.#idleUs = idleTimeoutUs;
  }

  /** Trunks held (open, opening or waiting for confirmation). */
  get size(): number {
    return this.#byId.size;
  }

  /** The other relays this one has an open trunk with, `host:port` as the trunk's frames come from (for tests and status). */
  peers(): string[] {
    return [...this.#byId.values()].filter((t) => t.open).map((t) => addressKey(t));
  }

  /** Whether `t` is still a trunk of this table (an offer made over it can still be answered). */
  alive(t: Trunk): boolean {
    return this.#byId.get(t.idLo) === t;
  }

  // ---------------------------------------------------------------- asking for a link (LINK_REMOTE)

  /**
   * A session asks, with its identity proven, for a link to the session `m.token` names on relay `m.relay`. The relay must
   * be a fleet member under that key (else NO_TRUNK, after one look at the registry if this relay may not know it yet);
   * the trunk is opened if there is none, and the request goes over it once it is open. A retry finds its request.
   */
  ask(now: number, s: Session, m: Extract<RelayControl, { type: 'linkRemote' }>): void {
    const fail = (code: number): void => {
      this.#ctx.stats.linkRefused++;
      if (code === RefuseCode.NoTrunk) this.#ctx.stats.noTrunk++;
      this.#sessions.send(s, { type: 'linkFailed', requestId: m.requestId, code });
    };
    const fleet = this.#fleet;
    if (!fleet) return fail(RefuseCode.NoTrunk);
    const name = addressKey(m.relay);
    const member = fleet.memberAt(name);
    if (!member) {
      // Not in the registry as last read: it may have joined since. The registry is read again, and the client's
      // retries wait for it up to TRUNK_UNKNOWN_WAIT_US; after that (and for a while) the answer is NO_TRUNK.
      fleet.wantMembers(now);
      const since = this.#unknown.get(name);
      if (since === undefined) this.#unknown.set(name, now);
      if (since === undefined || now - since < TRUNK_UNKNOWN_WAIT_US) return;
      return fail(RefuseCode.NoTrunk);
    }
    this.#unknown.delete(name);
    if (!bytesEqual(member, m.relay.publicKey)) return fail(RefuseCode.NoTrunk);
    const keyName = toHex(member);
    if ((this.#unreachable.get(keyName) ?? 0) > now) return fail(RefuseCode.NoTrunk);
    const t = this.#byKey.get(keyName) ?? this.#openTrunk(now, m.relay, keyName);
    if (!t) return fail(RefuseCode.NoTrunk);
    let i = -1;
    let asking = 0;
    t.links.forEach((x, j) => {
      if (x?.session !== s) return;
      if (x.asking) asking++;
      if (x.token !== null && bytesEqual(x.token, m.token)) i = j;
    });
    const l = t.links[i];
    if (l && !l.asking) return this.#sessions.send(s, { type: 'linkOk', requestId: m.requestId, linkId: l.sessionLinkId });
    if (l) l.requestId = m.requestId;
    else {
      // Links held and requests waiting together stay within the session's link limit.
      if (s.linkCount + asking >= this.#maxLinks) return fail(RefuseCode.LinkLimit);
      i = freeSlot(t.links);
      if (i >= MAX_TRUNK_LINKS) return fail(RefuseCode.LinkLimit);
      t.links[i] = { session: s, sessionLinkId: -1, peerLinkId: -1, asking: true, token: m.token.slice(), requestId: m.requestId };
      t.linkCount++;
    }
    if (t.open) this.#askOver(t, i);
  }

  #askOver(t: Trunk, i: number): void {
    const l = t.links[i];
    if (!l?.token) return;
    this.send(t, { type: 'trunkLinkRequest', linkId: i, token: l.token, peerId: l.session.peerId ?? 0n, user: l.session.user ?? '' });
  }

  /**
   * The session `s` here consented to the link a T_LINK_REQUEST asked for (`m.linkId` is the other relay's id): the link
   * is made and the other relay told (T_LINK_OK). A repeat gets the same answer. Returns 0, or the refusal code.
   */
  accept(now: number, t: Trunk, s: Session, peerLinkId: number, remotePeerId: bigint, consentedAt = -1): number {
    const have = t.links.findIndex((l) => l !== undefined && !l.asking && l.session === s && l.peerLinkId === peerLinkId);
    if (have >= 0) {
      this.send(t, { type: 'trunkLinkOk', linkId: peerLinkId, peerLinkId: have });
      return 0;
    }
    if (s.linkCount >= this.#maxLinks) return RefuseCode.LinkLimit;
    const i = freeSlot(t.links);
    if (i >= MAX_TRUNK_LINKS) return RefuseCode.LinkLimit;
    const slot = freeSlot(s.links);
    s.links[slot] = { peer: null, peerLinkId, asked: false, trunk: t, trunkLinkId: i, remotePeerId, consentedAt };
    s.linkCount++;
    t.links[i] = { session: s, sessionLinkId: slot, peerLinkId, asking: false, token: null, requestId: 0 };
    t.linkCount++;
    this.#linked(now, s);
    this.send(t, { type: 'trunkLinkOk', linkId: peerLinkId, peerLinkId: i });
    return 0;
  }

  #linked(now: number, s: Session): void {
    linkedNow(s, now, this.#idleUs);
    this.#ctx.stats.linksCreated++;
    this.#ctx.stats.trunkLinks++;
  }

  /** A session cut its side of a trunk link (UNLINK, consent ended, the session went): the other relay cuts its side. */
  release(t: Trunk, i: number): void {
    const l = t.links[i];
    if (!l) return;
    t.links[i] = undefined;
    t.linkCount--;
    if (l.peerLinkId >= 0 && t.open) this.send(t, { type: 'trunkUnlink', linkId: l.peerLinkId });
  }

  /** A session goes: its requests still waiting on trunks are forgotten (its links go through {@link release}). */
  sessionGone(s: Session): void {
    for (const t of this.#byId.values()) {
      for (let i = 0; i < t.links.length; i++) {
        const l = t.links[i];
        if (l?.asking && l.session === s) {
          t.links[i] = undefined;
          t.linkCount--;
        }
      }
    }
  }

  // ---------------------------------------------------------------- opening

  #secret(keyName: string, publicKey: Uint8Array): Uint8Array | null {
    let secret = this.#secrets.get(keyName);
    if (!secret) {
      const shared = this.#ctx.provider.deriveSharedSecret(this.#key, publicKey);
      if (!shared) return null;
      secret = shared;
      this.#secrets.set(keyName, secret);
    }
    return secret;
  }

  #newTrunk(now: number, publicKey: Uint8Array, keyName: string, address: string, port: number, opener: boolean, peerNonce: Uint8Array | null): Trunk {
    const provider = this.#ctx.provider;
    const id = new Uint8Array(SESSION_ID_BYTES);
    let lo: number;
    do {
      provider.fillRandom(id);
      lo = readU32(id, 4);
    } while (this.#byId.has(lo));
    const nonce = new Uint8Array(TRUNK_NONCE_BYTES);
    provider.fillRandom(nonce);
    const t: Trunk = {
      idHi: readU32(id, 0),
      idLo: lo,
      id,
      peerTrunkId: new Uint8Array(SESSION_ID_BYTES),
      publicKey: publicKey.slice(),
      keyName,
      address,
      port,
      opener,
      open: false,
      nonce,
      peerNonce,
      first: new Uint8Array(0),
      keys: null,
      outCounter: 0,
      dataSeq: 0,
      inWindow: new ReplayWindow(),
      dataWindow: new ReplayWindow(),
      links: [],
      linkCount: 0,
      createdUs: now,
      lastHeardUs: now,
      keepaliveSentUs: now,
      keepaliveSeq: 0,
      helloSentUs: now,
      helloTries: 0,
      idleSinceUs: -1,
    };
    this.#byId.set(lo, t);
    return t;
  }

  /** Opens a trunk to `relay`: TRUNK_HELLO now, again on the timer until TRUNK_OK comes or the tries run out. */
  #openTrunk(now: number, relay: RelayAddress, keyName: string): Trunk | null {
    const secret = this.#secret(keyName, relay.publicKey);
    if (!secret) return null;
    const t = this.#newTrunk(now, relay.publicKey, keyName, relay.address, relay.port, true, null);
    t.first = encodeTrunkHello(this.#ctx.provider, secret, this.#key.publicKey, relay.publicKey, t.id, t.nonce);
    this.#byKey.set(keyName, t);
    this.#hello(now, t);
    return t;
  }

  #hello(now: number, t: Trunk): void {
    t.helloSentUs = now;
    t.helloTries++;
    this.#ctx.out(t.first, t.port, t.address);
  }

  /**
   * TRUNK_HELLO from `address`:`port`. Answered only when its key is a fleet member's and its MAC verifies; a repeat of
   * a hello answered gets the same answer; when both relays open at once, the hello of the lower static key wins.
   */
  hello(now: number, address: string, port: number, data: Uint8Array): void {
    const stats = this.#ctx.stats;
    const h = parseTrunkHello(data);
    if (!h) {
      stats.malformed++;
      return;
    }
    const keyName = toHex(h.publicKey);
    const fleet = this.#fleet;
    const own = this.#key.publicKey;
    if (!fleet || !fleet.isMemberKey(keyName) || bytesEqual(h.publicKey, own)) {
      // Perhaps a relay that just joined: the registry is read again (at most every 250 ms) and the hello looked at
      // again when it answers (a few are held); otherwise it is refused (the opener tries again).
      if (fleet && this.#held.length < MAX_HELD_HELLOS && !bytesEqual(h.publicKey, own) && fleet.wantMembers(now)) this.#held.push({ address, port, data: data.slice() });
      else stats.trunksRefused++;
      return;
    }
    const secret = this.#secret(keyName, h.publicKey);
    if (!secret || !trunkHelloAuthentic(this.#ctx.provider, secret, data, h.publicKey, own)) {
      stats.trunksRefused++;
      return;
    }
    for (const t of [this.#byKey.get(keyName), this.#waiting.get(keyName)]) {
      if (t && !t.opener && t.peerNonce && bytesEqual(t.peerNonce, h.nonce)) {
        if (t.address === address && t.port === port) this.#ctx.out(t.first, port, address);
        return;
      }
    }
    const mine = this.#byKey.get(keyName);
    if (mine && mine.opener && !mine.open && compareBytes(own, h.publicKey) < 0) return; // ours wins: the other relay answers it
    const t = this.#newTrunk(now, h.publicKey, keyName, address, port, false, h.nonce.slice());
    t.peerTrunkId = h.trunkId.slice();
    t.keys = trunkKeys(this.#ctx.provider, secret, h.nonce, t.nonce, h.publicKey, own, false);
    t.first = encodeTrunkOk(t.keys, t.peerTrunkId, t.id, t.nonce);
    t.outCounter = 1; // counter 0 sealed the answer
    const old = this.#waiting.get(keyName);
    if (old) this.#byId.delete(old.idLo);
    this.#waiting.set(keyName, t);
    this.#ctx.out(t.first, port, address);
  }

  /** The member list was read again: the hellos held for it are looked at once more (a refused one is not held again). */
  membersRead(now: number): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      const key = parseTrunkHello(h.data)?.publicKey;
      if (key && this.#fleet?.isMemberKey(toHex(key))) this.hello(now, h.address, h.port, h.data);
      else this.#ctx.stats.trunksRefused++; // still unknown: refused (the opener's next try may find it known)
    }
  }

  /** TRUNK_OK for a trunk this relay opens: its tag proves the other relay holds its key; the trunk opens and is confirmed at once. */
  ok(now: number, address: string, port: number, data: Uint8Array): void {
    const stats = this.#ctx.stats;
    const o = parseTrunkOk(data);
    if (!o) {
      stats.malformed++;
      return;
    }
    const t = this.#named(data);
    if (!t || !t.opener || t.address !== address || t.port !== port) {
      stats.trunkUnauthenticated++;
      return;
    }
    if (t.open) return; // a repeat
    const secret = this.#secret(t.keyName, t.publicKey);
    if (!secret) return;
    const keys = trunkKeys(this.#ctx.provider, secret, t.nonce, o.nonce, this.#key.publicKey, t.publicKey, true);
    if (!trunkOkAuthentic(keys, data)) {
      stats.trunkUnauthenticated++;
      return;
    }
    t.keys = keys;
    t.peerTrunkId = o.answererId.slice();
    t.inWindow.mark(0);
    t.open = true;
    t.lastHeardUs = now;
    stats.trunksOpened++;
    this.#count();
    // The first sealed frame confirms the trunk at the other end; then the requests that waited for it.
    this.#keepalive(now, t);
    for (let i = 0; i < t.links.length; i++) if (t.links[i]?.asking) this.#askOver(t, i);
  }

  /** The answerer's trunk `t` is confirmed: it becomes the one in use, and one it replaces goes (its waiting requests move over). */
  #confirm(now: number, t: Trunk): void {
    this.#waiting.delete(t.keyName);
    const old = this.#byKey.get(t.keyName);
    this.#byKey.set(t.keyName, t);
    t.open = true;
    this.#ctx.stats.trunksAccepted++;
    if (old && old !== t) {
      for (let i = 0; i < old.links.length; i++) {
        const l = old.links[i];
        if (!l?.asking) continue;
        old.links[i] = undefined;
        old.linkCount--;
        const j = freeSlot(t.links);
        t.links[j] = l;
        t.linkCount++;
        this.#askOver(t, j);
      }
      this.#gone(old);
    }
    this.#keepalive(now, t);
    this.#count();
  }

  // ---------------------------------------------------------------- frames

  #named(data: Uint8Array): Trunk | null {
    const t = this.#byId.get(readU32(data, TRUNK_ID_AT + 4));
    return t && t.idHi === readU32(data, TRUNK_ID_AT) ? t : null;
  }

  /** Sends a trunk message (sealed under the trunk's key of this direction). */
  send(t: Trunk, m: RelayControl): void {
    if (!t.keys) return;
    this.#ctx.out(sealTrunk(t.keys, t.peerTrunkId, t.outCounter++, m), t.port, t.address);
  }

  #keepalive(now: number, t: Trunk): void {
    t.keepaliveSentUs = now;
    t.keepaliveSeq = (t.keepaliveSeq + 1) >>> 0;
    this.send(t, { type: 'trunkKeepalive', seq: t.keepaliveSeq });
  }

  /** TRUNK_SEALED: from the trunk's other relay only, a fresh counter, then the AEAD; the message is acted on. */
  sealed(now: number, address: string, port: number, data: Uint8Array): void {
    const stats = this.#ctx.stats;
    const t = this.#named(data);
    if (!t || !t.keys || t.address !== address || t.port !== port) {
      stats.trunkUnauthenticated++;
      return;
    }
    const counter = trunkSealedCounter(data);
    if (counter < 0 || !t.inWindow.isNew(counter)) {
      stats.trunkReplayed++;
      return;
    }
    const o = openTrunk(t.keys, data);
    if (!o) {
      stats.trunkUnauthenticated++;
      return;
    }
    t.inWindow.mark(o.counter);
    t.lastHeardUs = now;
    if (!t.open) this.#confirm(now, t);
    const m = o.message;
    switch (m.type) {
      case 'trunkLinkRequest':
        this.host.linkRequest(now, t, m);
        return;
      case 'trunkLinkOk':
        this.#linkOk(now, t, m.linkId, m.peerLinkId);
        return;
      case 'trunkLinkFailed': {
        const l = t.links[m.linkId];
        if (!l?.asking) return;
        t.links[m.linkId] = undefined;
        t.linkCount--;
        stats.linkRefused++;
        this.#sessions.send(l.session, { type: 'linkFailed', requestId: l.requestId, code: m.code });
        return;
      }
      case 'trunkUnlink': {
        const l = t.links[m.linkId];
        if (!l || l.asking) return;
        t.links[m.linkId] = undefined;
        t.linkCount--;
        this.#cutHere(t, m.linkId, l);
        return;
      }
      case 'trunkClose':
        this.#gone(t);
        return;
      default:
      // A keepalive: it was heard.
    }
  }

  /** T_LINK_OK: the other relay made the link a session here asked for; the session hears LINK_OK. */
  #linkOk(now: number, t: Trunk, i: number, peerLinkId: number): void {
    const l = t.links[i];
    if (!l || (!l.asking && l.peerLinkId !== peerLinkId)) {
      // Nobody asks for it any more (the session went or let go): the other relay cuts its side.
      this.send(t, { type: 'trunkUnlink', linkId: peerLinkId });
      return;
    }
    if (!l.asking) return; // a repeat
    const s = l.session;
    if (s.linkCount >= this.#maxLinks) {
      t.links[i] = undefined;
      t.linkCount--;
      this.send(t, { type: 'trunkUnlink', linkId: peerLinkId });
      this.#sessions.send(s, { type: 'linkFailed', requestId: l.requestId, code: RefuseCode.LinkLimit });
      return;
    }
    const slot = freeSlot(s.links);
    s.links[slot] = { peer: null, peerLinkId, asked: true, trunk: t, trunkLinkId: i, remotePeerId: null, consentedAt: -1 };
    s.linkCount++;
    l.asking = false;
    l.sessionLinkId = slot;
    l.peerLinkId = peerLinkId;
    this.#linked(now, s);
    this.#sessions.send(s, { type: 'linkOk', requestId: l.requestId, linkId: slot });
  }

  /** The other relay cut a link (or the trunk went): the session here forgets its side, untold (its peer's failover moves it). */
  #cutHere(t: Trunk, i: number, l: TrunkLink): void {
    const s = l.session;
    const link = s.links[l.sessionLinkId];
    if (!link || link.trunk !== t || link.trunkLinkId !== i) return;
    s.links[l.sessionLinkId] = undefined;
    s.linkCount--;
    this.#ctx.stats.linksCut++;
  }

  /** A DATA_UP that passed the session's checks, on a link over `t`: its header becomes TRUNK_DATA's, in place, and it goes to the other relay. */
  sendData(t: Trunk, peerLinkId: number, data: Uint8Array): void {
    const keys = t.keys;
    if (!t.open || !keys) {
      this.#ctx.stats.noLink++;
      return;
    }
    data[0] = RelayMsg.TrunkData;
    data.set(t.peerTrunkId, TRUNK_ID_AT);
    data[DATA_LINK_AT] = peerLinkId >>> 8;
    data[DATA_LINK_AT + 1] = peerLinkId & 0xff;
    writeDataTag(keys.dataOut, t.dataSeq++, data, this.#block);
    this.#ctx.stats.trunkPacketsOut++;
    this.#ctx.out(data, t.port, t.address);
  }

  /**
   * TRUNK_DATA: from the trunk's other relay, its sequence tag fresh under the trunk's data key, on a link of the trunk:
   * rewritten in place into DATA_DOWN for the session here. Anything else is dropped and counted.
   */
  forward(now: number, address: string, port: number, data: Uint8Array): void {
    const stats = this.#ctx.stats;
    if (data.length <= UP_HEADER_BYTES) {
      stats.malformed++;
      return;
    }
    const t = this.#named(data);
    const keys = t?.keys;
    if (!t || !keys || !t.open || t.address !== address || t.port !== port) {
      stats.trunkUnauthenticated++;
      return;
    }
    const seq = freshTag(keys.dataIn, t.dataWindow, data, this.#block);
    if (seq < 0) {
      if (seq === STALE_TAG) stats.trunkReplayed++;
      else stats.trunkUnauthenticated++;
      return;
    }
    t.dataWindow.mark(seq);
    t.lastHeardUs = now;
    const l = t.links[((data[DATA_LINK_AT] as number) << 8) | (data[DATA_LINK_AT + 1] as number)];
    if (!l || l.asking) {
      stats.noLink++;
      return;
    }
    stats.trunkPacketsIn++;
    stats.forwardedPackets++;
    stats.forwardedBytes += data.length - UP_HEADER_BYTES;
    sendDown(this.#ctx, data, l.sessionLinkId, l.session);
  }

  // ---------------------------------------------------------------- timers and the end

  /** Hello retries, keepalives, silence and idleness (the reap scan, every 250 ms while there are trunks). */
  tick(now: number): void {
    for (const [k, until] of this.#unreachable) if (until <= now) this.#unreachable.delete(k);
    for (const [k, since] of this.#unknown) if (now - since > TRUNK_UNKNOWN_KEPT_US) this.#unknown.delete(k);
    for (const t of [...this.#byId.values()]) {
      if (!t.open) {
        if (t.opener && now - t.helloSentUs >= TRUNK_HELLO_RETRY_US) {
          if (t.helloTries < TRUNK_HELLO_TRIES) this.#hello(now, t);
          else {
            this.#unreachable.set(t.keyName, now + TRUNK_UNREACHABLE_US);
            this.#gone(t);
          }
        } else if (!t.opener && now - t.createdUs > TRUNK_UNCONFIRMED_US) {
          this.#byId.delete(t.idLo);
          if (this.#waiting.get(t.keyName) === t) this.#waiting.delete(t.keyName);
        }
        continue;
      }
      if (now - t.lastHeardUs > TRUNK_SILENCE_US) {
        this.#gone(t);
        continue;
      }
      if (t.linkCount > 0) t.idleSinceUs = -1;
      else if (t.idleSinceUs < 0) t.idleSinceUs = now;
      else if (now - t.idleSinceUs > TRUNK_IDLE_US) {
        this.send(t, { type: 'trunkClose' });
        this.#gone(t);
        continue;
      }
      if (now - t.keepaliveSentUs >= TRUNK_KEEPALIVE_US) this.#keepalive(now, t);
    }
  }

  /** A trunk goes: its links are cut here (their sessions untold), its waiting requests answered NO_TRUNK. */
  #gone(t: Trunk): void {
    if (!this.alive(t)) return;
    this.#byId.delete(t.idLo);
    if (this.#byKey.get(t.keyName) === t) this.#byKey.delete(t.keyName);
    if (this.#waiting.get(t.keyName) === t) this.#waiting.delete(t.keyName);
    t.links.forEach((l, i) => {
      if (!l) return;
      if (l.asking) {
        this.#ctx.stats.noTrunk++;
        this.#sessions.send(l.session, { type: 'linkFailed', requestId: l.requestId, code: RefuseCode.NoTrunk });
      } else this.#cutHere(t, i, l);
    });
    t.links.length = 0;
    t.linkCount = 0;
    if (t.open) this.#ctx.stats.trunksClosed++;
    this.#count();
    this.host.gone(t);
  }

  #count(): void {
    let n = 0;
    for (const t of this.#byId.values()) if (t.open) n++;
    this.#ctx.stats.trunks = n;
  }
}

/** -1, 0 or 1: `a` before, equal to or after `b`, byte by byte (the tie-break of two hellos crossing). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1;
  return a.length - b.length;
}

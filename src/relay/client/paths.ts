import type { SocketAddress, Transmit } from '../../core/types.js';
import { RefuseCode, addressKey, type RelayControl, type Route, type RouteEntry } from '../protocol.js';
import { usable } from './choice.js';
import { MAX_QUEUED_PER_PATH, REQUEST_RETRY_US, REQUEST_TRIES, UNCLAIMED_PATH_US, newPath, nextHopHeader, writeHopHeader, type Path, type RelayState } from './state.js';

// Paths and links, client side (docs/RELAY.md, "Links"): each end-to-end connection through the relays
// has one path with a stable virtual address; underneath, the path is linked through one relay of the
// peer's route at a time, re-linked when that relay fails, drains or leaves the peer's route.

/** What the path table needs of the relay client. */
export interface PathHost {
  /** The relay at `addr` with `publicKey` (known or new, not configured), or null if the relay there has another key. */
  relayAt(addr: SocketAddress, publicKey: Uint8Array): RelayState | null;
  /** What a link request on `r` proves this client is: its peer id, key and the session's proof; null before the session is open. */
  linkIdentity(r: RelayState): { peerId: bigint; publicKey: Uint8Array; proof: Uint8Array } | null;
  /** Opens a session on `r` unless it has one or is opening one. */
  wantSession(r: RelayState, now: number): void;
  /** The relay a two-hop link goes through: this client's first open, usable relay of primary and backup, or null. */
  carrier(): RelayState | null;
  sendControl(r: RelayState, m: RelayControl): void;
  /** Queues a datagram for the socket. */
  transmit(t: Transmit): void;
  nextRequestId(): number;
  /** Something falls due at `atUs` (the client's timer). */
  dueAt(atUs: number): void;
  /** Whether a connection uses the path at `vaddr`. */
  pathInUse(vaddr: SocketAddress): boolean;
  /** The peer's relay refused the path's link (NOT_ACCEPTED or BAD_PROOF): its connection cannot reach the peer. */
  refused(path: Path): void;
}

/** Counters the path table keeps (part of the relay client's stats). */
export interface PathStats {
  datagramsSent: number;
  noLinkDrops: number;
  relinks: number;
  linkFailures: number;
  /** Links the peer's relay refused because the peer did not consent (or was too busy to be asked). */
  linksNotAccepted: number;
}

/** Every path, by the port of its virtual address, with its link and the requests that make one. */
export class PathTable {
  readonly #host: PathHost;
  readonly #stats: PathStats;
  readonly #paths = new Map<number, Path>();
  #nextVport = 1;

  constructor(host: PathHost, stats: PathStats) {
    this.#host = host;
    this.#stats = stats;
  }

  /** How many paths exist. */
  get size(): number {
    return this.#paths.size;
  }

  get(vaddr: SocketAddress): Path | undefined {
    return this.#paths.get(vaddr.port);
  }

  /** A new path to the peer that owns `route`, being linked. */
  open(now: number, route: Route): Path {
    const path = this.#add(false);
    path.route = route;
    this.relink(path, now);
    return path;
  }

  /** A newer route for a path's peer: the path moves when its relay is not in the new route or is failing. */
  update(now: number, vaddr: SocketAddress, route: Route): void {
    const path = this.#paths.get(vaddr.port);
    if (!path || (path.route && route.revision <= path.route.revision)) return;
    path.route = route;
    const r = path.relay;
    // A path the peer made (to our token, on one of our relays) stays while that relay works: the peer's
    // route names the peer's relays, not ours, and a second link would leave each side sending on another
    // link, the connection migrating back and forth between them. A two-hop path stays while the peer's
    // relay it reaches is still in the route.
    const target = path.via ? addressKey(path.via.relay) : r?.key;
    const stays = usable(r) && (path.incoming || route.entries.some((e) => addressKey(e.relay) === target));
    if (!stays) this.relink(path, now);
  }

  /** Forgets a path at once; its link, if no other path holds it, is cut at the relay (UNLINK). */
  close(vaddr: SocketAddress): void {
    const path = this.#paths.get(vaddr.port);
    if (!path) return;
    this.#paths.delete(vaddr.port);
    const r = path.relay;
    const held = r !== null && r.links[path.linkId] === path;
    this.#release(path);
    if (r && held && r.links[path.linkId] === undefined && r.phase === 'open') this.#host.sendControl(r, { type: 'unlink', linkId: path.linkId });
  }

  /**
   * A path lets go of its link's slot (it closes, or moves to another link). When both peers linked to
   * each other's token, the relay gave both of this client's paths one link (the peer's, seen in data, and
   * ours, from LINK_OK): the other path gets the slot back, so that what arrives on the link still reaches
   * the connection on it rather than a new path no connection knows.
   */
  #release(path: Path): void {
    const r = path.relay;
    if (!r || r.links[path.linkId] !== path) return;
    let heir: Path | undefined;
    for (const p of this.#paths.values()) if (p !== path && p.relay === r && p.linkId === path.linkId) heir = p;
    r.links[path.linkId] = heir;
  }

  /**
   * DATA_DOWN on link `linkId` of `r`: its path, or a new one (a link the peer made to our token, or a late
   * datagram on a link already forgotten). The endpoint authenticates what comes on it; a new path no
   * connection takes within UNCLAIMED_PATH_US is forgotten, so stray or spoofed link ids cost nothing lasting.
   */
  down(r: RelayState, linkId: number, now: number): Path {
    let path = r.links[linkId];
    if (!path) {
      path = this.#add(true);
      this.#bind(path, r, linkId);
      path.forgetAtUs = now + UNCLAIMED_PATH_US;
      path.stillUsed = () => this.#host.pathInUse(path?.vaddr as SocketAddress);
      this.#host.dueAt(path.forgetAtUs);
    }
    return path;
  }

  /** The endpoint's datagram to a path, as one to its relay with the hop header gathered in front; null when not linked (queued or dropped). */
  wrap(t: Transmit): Transmit | null {
    const path = this.#paths.get(t.destination.port);
    if (!path) {
      this.#stats.noLinkDrops++;
      return null;
    }
    const r = path.relay;
    if (!r || r.phase !== 'open' || path.linkId < 0) {
      if (path.queue.length < MAX_QUEUED_PER_PATH) path.queue.push(t.data);
      else this.#stats.noLinkDrops++;
      return null;
    }
    this.#stats.datagramsSent++;
    path.tx.data = t.data;
    path.tx.header = nextHopHeader(path, r);
    return path.tx;
  }

  /** Whether any path uses or waits for `r`. */
  uses(r: RelayState): boolean {
    if (r.links.some((p) => p !== undefined)) return true;
    for (const p of this.#paths.values()) if (p.pendingRelay === r) return true;
    return false;
  }

  /** `r`'s session went: its paths re-link elsewhere. */
  lost(r: RelayState, now: number): void {
    for (let i = 0; i < r.links.length; i++) {
      const path = r.links[i];
      if (!path) continue;
      r.links[i] = undefined;
      path.relay = null;
      path.linkId = -1;
      path.via = null;
      this.relink(path, now);
    }
    for (const path of this.#paths.values()) if (path.pendingRelay === r) this.relink(path, now);
  }

  /** `r` is draining: its paths move now, while the old links still work (make before break). */
  drain(r: RelayState, now: number): void {
    for (const path of r.links) if (path) this.relink(path, now);
  }

  /** A session opened on `r`: the link requests that waited for it go out. */
  sessionOpen(r: RelayState, now: number): void {
    for (const path of this.#paths.values()) if (path.pendingRelay === r) this.#requestLink(path, r, now);
  }

  /** LINK_OK or LINK_FAILED from `r`. Returns whether it answered one of our requests. */
  linkResult(r: RelayState, m: Extract<RelayControl, { type: 'linkOk' | 'linkFailed' }>, now: number): boolean {
    for (const path of this.#paths.values()) {
      if (path.pendingRelay !== r || path.requestId !== m.requestId) continue;
      if (m.type === 'linkOk') this.#bind(path, r, m.linkId);
      else if (m.code === RefuseCode.Busy) {
        // The peer's relay is busy with offers (or we asked too fast): the timer asks again.
        path.pendingRelay = null;
        path.requestSentUs = now;
        path.busy = true;
        this.#host.dueAt(now + REQUEST_RETRY_US);
      } else if (m.code === RefuseCode.NoTrunk && path.pendingVia) {
        // Our relay has no trunk to the peer's: that entry is reached the old way (a session on the peer's relay).
        path.noTrunk.add(`${r.key}>${addressKey(path.pendingVia.relay)}`);
        path.pendingRelay = null;
        path.pendingVia = null;
        this.relink(path, now);
      } else if (m.code === RefuseCode.NotAccepted || m.code === RefuseCode.BadProof) {
        // The peer refused: no more link requests; the connection on the path times out or is closed by its owner.
        this.#stats.linksNotAccepted++;
        path.pendingRelay = null;
        path.refused = true;
        this.#host.refused(path);
      } else {
        // The peer's session there is gone (BAD_ROUTE): try its next relay; its new route will follow.
        this.#stats.linkFailures++;
        const gone = path.pendingVia ? addressKey(path.pendingVia.relay) : r.key;
        path.pendingRelay = null;
        path.pendingVia = null;
        if (path.route) path.route = { ...path.route, entries: path.route.entries.filter((e) => addressKey(e.relay) !== gone) };
        this.relink(path, now);
      }
      return true;
    }
    return false;
  }

  /** Lingering closes and link request retries that are due; returns the earliest next deadline. */
  handleTimeout(now: number): number {
    let due = Number.POSITIVE_INFINITY;
    for (const path of [...this.#paths.values()]) due = Math.min(due, this.#timers(path, now));
    return due;
  }

  #timers(path: Path, now: number): number {
    if (now >= path.forgetAtUs) {
      path.forgetAtUs = Number.POSITIVE_INFINITY;
      if (!path.stillUsed?.()) {
        this.close(path.vaddr);
        return Number.POSITIVE_INFINITY;
      }
      path.stillUsed = null;
    }
    let due = path.forgetAtUs;
    const r = path.pendingRelay;
    if (r && r.phase === 'open') {
      if (now - path.requestSentUs >= REQUEST_RETRY_US) {
        if (path.requestTries >= REQUEST_TRIES) {
          // Unanswered: over a trunk, that entry is reached the old way from now on (the relay may not know LINK_REMOTE).
          if (path.pendingVia) path.noTrunk.add(`${r.key}>${addressKey(path.pendingVia.relay)}`);
          path.pendingRelay = null;
          path.pendingVia = null;
          this.#stats.linkFailures++;
        } else this.#requestLink(path, r, now);
      }
      if (path.pendingRelay) due = Math.min(due, path.requestSentUs + REQUEST_RETRY_US);
    } else if (!r && (path.busy || !path.relay || path.relay.dead) && path.route && !path.refused) {
      // No link and none being asked for: ask again, at most once per REQUEST_RETRY_US (a BUSY answer waits too).
      const wait = path.requestSentUs + REQUEST_RETRY_US - now;
      if (wait <= 0) this.relink(path, now);
      if (!path.pendingRelay) due = Math.min(due, now + (wait > 0 ? wait : REQUEST_RETRY_US));
    }
    return due;
  }

  #add(incoming: boolean): Path {
    const path = newPath(this.#nextVport++, incoming);
    this.#paths.set(path.vaddr.port, path);
    return path;
  }

  /**
   * Links `path` through the first relay of its route that is alive: on it, if this client has a session there (one
   * hop); otherwise through this client's own relay and its trunk to that one (two hops, docs/RELAY.md "Trunks"); or,
   * when its relay has no trunk there, the old way: a session on the peer's relay, opened if needed.
   */
  relink(path: Path, now: number): void {
    const route = path.route;
    if (!route || path.refused) return; // a path the peer made: it re-links, or tells us its new route
    let target: RelayState | null = null;
    let via: RouteEntry | null = null;
    for (const e of route.entries) {
      const r = this.#host.relayAt(e.relay, e.publicKey);
      if (!r || !usable(r)) continue;
      target = r;
      const c = r.phase === 'open' ? null : this.#host.carrier();
      if (c && c !== r && !path.noTrunk.has(`${c.key}>${r.key}`)) {
        target = c;
        via = e;
      }
      break;
    }
    if (!target) {
      path.pendingRelay = null; // no relay of the peer's route works now: retried on the timer, or on a new route
      return;
    }
    path.busy = false;
    const sameVia = via === null ? path.via === null : path.via !== null && addressKey(path.via.relay) === addressKey(via.relay);
    if (path.relay === target && path.linkId >= 0 && sameVia) return;
    path.pendingRelay = target;
    path.pendingVia = via;
    path.requestTries = 0;
    path.requestId = this.#host.nextRequestId();
    if (target.phase === 'open') this.#requestLink(path, target, now);
    else this.#host.wantSession(target, now);
    this.#host.dueAt(now + REQUEST_RETRY_US);
  }

  #requestLink(path: Path, r: RelayState, now: number): void {
    const via = path.pendingVia;
    const token = via ? via.token : (path.route?.entries.find((e) => addressKey(e.relay) === r.key)?.token ?? null);
    const me = this.#host.linkIdentity(r);
    if (!token || !me) return;
    path.requestSentUs = now;
    path.requestTries++;
    if (via) this.#host.sendControl(r, { type: 'linkRemote', requestId: path.requestId, relay: { ...via.relay, publicKey: via.publicKey }, token, ...me });
    else this.#host.sendControl(r, { type: 'linkRequest', requestId: path.requestId, token, ...me });
  }

  #bind(path: Path, r: RelayState, linkId: number): void {
    this.#release(path);
    if (path.relay) this.#stats.relinks++;
    path.relay = r;
    path.linkId = linkId;
    path.via = path.pendingRelay === r ? path.pendingVia : null;
    path.pendingRelay = null;
    path.pendingVia = null;
    r.links[linkId] = path;
    r.idleSinceUs = -1;
    writeHopHeader(path, r, linkId);
    // What the endpoint sent before the link was up leaves now, in order.
    for (const d of path.queue.splice(0)) {
      this.#stats.datagramsSent++;
      this.#host.transmit({ destination: r.addr, data: d, header: nextHopHeader(path, r) });
    }
  }
}

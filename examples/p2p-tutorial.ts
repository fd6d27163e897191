// The GodotSteam P2P tutorial (seed 003), on netlane's NetworkingMessages: a session request, accept,
// a handshake message, then messages as structured data, optionally compressed with node:zlib.
// Two players in one lobby; everything goes through a relay by peer id, so neither learns the
// other's IP address.
//
//   node dist/examples/p2p-tutorial.js [--relay HOST:PORT#KEY]... [--compress] [--turns N]
//
// Without --relay an embedded relay runs in this process (as `netlane relay --open` would).
//
// The tutorial's safety point: a payload is plain bytes from someone else. It is decoded as JSON
// (data only) and checked; nothing in it is ever evaluated or used to pick a function by name
// beyond a fixed table of handlers.
import { gunzipSync, gzipSync } from 'node:zlib';
import { NetworkingMessages, RelayServer, SendFlags, type NetworkingIdentity, type SessionFailedInfo } from '../src/index.js';

function args(): { relays: string[]; compress: boolean; turns: number } {
  const relays: string[] = [];
  let compress = false;
  let turns = 3;
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--relay') relays.push(a[++i] ?? '');
    else if (a[i] === '--compress') compress = true;
    else if (a[i] === '--turns') turns = Number(a[++i]);
    else throw new Error(`unknown argument ${a[i]}`);
  }
  return { relays, compress, turns };
}

/** What players say to each other: a `message` kind and its fields. Anything else is refused. */
type Packet = { readonly message: 'handshake'; readonly from: string } | { readonly message: 'move'; readonly turn: number; readonly x: number; readonly y: number } | { readonly message: 'chat'; readonly text: string };

/** Largest payload accepted after decompression: a small packet must not inflate into megabytes. */
const MAX_DECODED = 64 * 1024;

class Player {
  readonly name: string;
  readonly steam: NetworkingMessages;
  readonly compress: boolean;
  /** The lobby's members (the lobby tutorial fills this); here the two players. */
  lobbyMembers: { steamId: bigint; name: string }[] = [];
  readonly log: string[] = [];
  refused = 0;
  turn = 0;

  constructor(name: string, relays: string[], compress: boolean) {
    this.name = name;
    this.compress = compress;
    this.steam = new NetworkingMessages({ relays });
    // _ready(): the two signals.
    this.steam.on('sessionRequest', (remoteId) => this.onSessionRequest(remoteId));
    this.steam.on('sessionFailed', (info) => this.onSessionFailed(info));
  }

  get steamId(): bigint {
    return this.steam.getIdentity();
  }

  /** _process(): run the callbacks, then read what arrived. */
  process(): void {
    this.steam.runCallbacks();
    this.readMessages();
  }

  /** _on_network_messages_session_request: accept (any logic to refuse would go here), then say hello. */
  onSessionRequest(remoteId: NetworkingIdentity): void {
    const requester = this.lobbyMembers.find((m) => m.steamId === remoteId)?.name ?? String(remoteId);
    this.log.push(`${requester} is requesting a P2P session`);
    this.steam.acceptSessionWithUser(remoteId);
    this.makeP2PHandshake();
  }

  /** _on_network_messages_session_failed: say why. */
  onSessionFailed(info: SessionFailedInfo): void {
    this.log.push(`session with ${String(info.identity)} failed (${info.reason}): ${info.debugMessage}`);
  }

  makeP2PHandshake(): void {
    this.sendMessage(0n, { message: 'handshake', from: this.name });
  }

  /** send_message(target, data): 0 means everyone in the lobby but us. Reliable, no Nagle, channel 0. */
  sendMessage(target: bigint, packet: Packet): void {
    const sendType = SendFlags.ReliableNoNagle;
    const channel = 0;
    const json = Buffer.from(JSON.stringify(packet));
    const data = this.compress ? gzipSync(json) : json;
    const targets = target === 0n ? this.lobbyMembers.filter((m) => m.steamId !== this.steamId).map((m) => m.steamId) : [target];
    for (const t of targets) this.steam.sendMessageToUser(t, data, sendType, channel);
  }

  /** read_messages(): up to 1000 messages from channel 0, each decoded as data and checked. */
  readMessages(): void {
    for (const message of this.steam.receiveMessagesOnChannel(0, 1000)) {
      if (message.size === 0) {
        this.log.push('WARNING: read an empty message with non-zero size!');
        continue;
      }
      const packet = this.decode(message.payload);
      if (!packet) {
        this.refused++;
        continue;
      }
      const sender = this.lobbyMembers.find((m) => m.steamId === message.identity)?.name ?? String(message.identity);
      this.handle(sender, packet);
    }
  }

  /** Bytes -> a Packet, or null. JSON.parse builds plain data only; the shape is checked field by field. */
  decode(payload: Uint8Array): Packet | null {
    let bytes: Uint8Array = payload;
    try {
      if (this.compress) bytes = gunzipSync(payload, { maxOutputLength: MAX_DECODED });
      if (bytes.length > MAX_DECODED) return null;
      const v: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
      if (typeof v !== 'object' || v === null) return null;
      const o = v as Record<string, unknown>;
      if (o.message === 'handshake' && typeof o.from === 'string' && o.from.length <= 64) return { message: 'handshake', from: o.from };
      if (o.message === 'move' && Number.isInteger(o.turn) && Number.isFinite(o.x) && Number.isFinite(o.y)) return { message: 'move', turn: o.turn as number, x: o.x as number, y: o.y as number };
      if (o.message === 'chat' && typeof o.text === 'string' && o.text.length <= 500) return { message: 'chat', text: o.text };
      return null;
    } catch {
      return null; // not gzip, not JSON, too large: refused, never evaluated
    }
  }

  handle(sender: string, p: Packet): void {
    switch (p.message) {
      case 'handshake':
        this.log.push(`handshake from ${sender} (${p.from})`);
        return;
      case 'move':
        this.log.push(`${sender} moved to ${p.x},${p.y} (turn ${p.turn})`);
        this.turn = p.turn + 1;
        return;
      case 'chat':
        this.log.push(`${sender}: ${p.text}`);
        return;
    }
  }
}

async function main(): Promise<void> {
  const { relays: given, compress, turns } = args();
  const embedded = given.length === 0 ? RelayServer.open({ open: true, address: '127.0.0.1', port: 0 }) : null;
  const relays = embedded ? [embedded.address] : given;
  const host = new Player('Host', relays, compress);
  const guest = new Player('Guest', relays, compress);
  const players = [host, guest];
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const frames = async (n: number, until: () => boolean = () => false): Promise<void> => {
    for (let i = 0; i < n && !until(); i++) {
      for (const p of players) p.process();
      await sleep(10);
    }
  };
  try {
    await frames(500, () => players.every((p) => p.steam.registered));
    const lobby = players.map((p) => ({ steamId: p.steamId, name: p.name }));
    for (const p of players) p.lobbyMembers = lobby;
    // The host joins the lobby and greets everyone: the guest gets a session request, accepts, greets back.
    host.makeP2PHandshake();
    await frames(500, () => host.log.some((l) => l.startsWith('handshake')) && guest.log.some((l) => l.startsWith('handshake')));
    // A turn-based exchange.
    for (let t = 0; t < turns; t++) {
      const mover = t % 2 === 0 ? host : guest;
      const other = mover === host ? guest : host;
      mover.sendMessage(other.steamId, { message: 'move', turn: t, x: t * 2, y: t * 3 });
      await frames(300, () => other.turn === t + 1);
    }
    host.sendMessage(0n, { message: 'chat', text: 'gg' });
    // A hostile payload: code in a string, a prototype key, garbage. Refused, never run.
    const hostile = [JSON.stringify({ message: 'constructor', code: 'process.exit(1)' }), JSON.stringify({ message: 'chat', text: { toString: 'x' } }), 'not json at all'];
    for (const h of hostile) guest.steam.sendMessageToUser(host.steamId, compress ? gzipSync(h) : Buffer.from(h), SendFlags.Reliable, 0);
    await frames(300, () => guest.log.some((l) => l.endsWith(': gg')) && host.refused === hostile.length);
    for (const p of players) {
      console.log(`[${p.name}]`);
      for (const l of p.log) console.log(`  ${l}`);
    }
    console.log(`host refused ${host.refused} hostile payloads; compression ${compress ? 'on (gzip)' : 'off'}`);
    const ok = guest.log.some((l) => l.includes('requesting a P2P session')) && guest.log.some((l) => l.endsWith(': gg')) && host.refused === hostile.length && players.every((p) => p.turn > 0 || turns === 0);
    console.log(ok ? 'p2p tutorial: OK' : 'p2p tutorial: FAILED');
    process.exitCode = ok ? 0 : 1;
  } finally {
    for (const p of players) p.steam.close();
    embedded?.close();
  }
}

await main();

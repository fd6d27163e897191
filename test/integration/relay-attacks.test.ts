// The relay hop under attack over real UDP: `netlane relay --open` in a child process, two NetworkManagers
// in this one, and an on-path proxy between the victim and the relay that sees (and records) every byte of
// the victim's relay session. From what it saw, an attacker at another address tries to take the session
// over; the proxy replays the victim's data; 1,000 strangers holding the victim's public route ask for links
// and push data. The victim's session stays its own, replays are not forwarded, and no stranger's byte
// reaches it, while a peer it opens links through the crowd. Every wait is on a condition with a deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { NetworkManager } from '../../src/api/network-manager.js';
import { NodeCryptoProvider } from '../../src/crypto/node-provider.js';
import { RelayMsg, decodeRoute, splitRelayKey } from '../../src/relay/protocol.js';
import { HopSession } from '../../src/testing/relay-hop.js';
import { openAll } from '../support/relayed.js';
import { nextFrame, pump, spawnRelay } from './relay-support.js';

/** A UDP socket bound on loopback. */
async function bound(address = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  s.bind(0, address);
  await once(s, 'listening');
  return s;
}

/**
 * An on-path proxy in front of the relay, as a NAT would be: each client that sends to `port` gets a socket of
 * its own towards the relay (so the relay sees that socket as the client), and answers go back. Every datagram
 * both ways is recorded; `duplicateData` sends each DATA_UP again that many times (a replay by the path).
 * `downLinks` are the link ids of DATA_DOWN to the first client (the victim).
 */
async function proxy(relayPort: number): Promise<{ port: number; up: Buffer[]; down: Buffer[]; downLinks: Set<number>; duplicateData: number; close: () => void }> {
  const outer = await bound();
  const inners = new Map<string, dgram.Socket>();
  const p = {
    port: outer.address().port,
    up: [] as Buffer[],
    down: [] as Buffer[],
    downLinks: new Set<number>(),
    duplicateData: 0,
    close: (): void => {
      outer.close();
      for (const s of inners.values()) s.close();
    },
  };
  outer.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let inner = inners.get(key);
    if (!inner) {
      const first = inners.size === 0;
      const sock = dgram.createSocket('udp4');
      sock.bind(0, '127.0.0.1');
      sock.on('message', (m) => {
        p.down.push(Buffer.from(m));
        if (first && m[0] === RelayMsg.DataDown) p.downLinks.add(m.readUInt16BE(1));
        outer.send(m, from.port, from.address);
      });
      inners.set(key, sock);
      inner = sock;
    }
    p.up.push(Buffer.from(msg));
    inner.send(msg, relayPort, '127.0.0.1');
    if (msg[0] === RelayMsg.DataUp) for (let i = 0; i < p.duplicateData; i++) inner.send(msg, relayPort, '127.0.0.1');
  });
  return p;
}

/** Sends `n` numbered reliable messages on channel 1 from `a` to `b` and waits until all arrived; returns what arrived, in order. */
async function exchange(nms: readonly NetworkManager[], a: NetworkManager, b: NetworkManager, n: number, what: string): Promise<number[]> {
  const got: number[] = [];
  const on = (peer: bigint, channel: number, data: Uint8Array): void => {
    if (peer === a.getPeerId() && channel === 1) got.push(new DataView(data.buffer, data.byteOffset).getUint32(0));
  };
  b.on('message', on);
  let sent = 0;
  await pump(nms, () => got.length >= n, 10_000, what, () => {
    for (let k = 0; k < 50 && sent < n; k++, sent++) {
      const m = new Uint8Array(100);
      new DataView(m.buffer).setUint32(0, sent);
      a.sendMessage(b.getPeerId(), 1, m);
    }
  });
  b.off('message', on);
  return got;
}

test('the relay hop under attack: a captured session cannot be taken over, replayed data is not forwarded, 1,000 strangers holding the route deliver 0 bytes and cannot stop a peer the victim opens', async () => {
  const relay = await spawnRelay();
  const keyed = splitRelayKey(relay.address);
  assert.ok(keyed, `the relay prints its key: ${relay.address}`);
  const relayKey = Buffer.from(keyed.publicKey).toString('base64url');
  const path = await proxy(relay.port);
  const sockets: dgram.Socket[] = [];
  const nms: NetworkManager[] = [];
  try {
    const victim = new NetworkManager({ relays: [`127.0.0.1:${path.port}#${relayKey}`], bindAddress: '127.0.0.1' });
    const peer = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
    nms.push(victim, peer);
    await pump(nms, () => nms.every((nm) => nm.route !== null), 5000, 'routes');
    openAll(nms);
    await pump(nms, () => victim.peerStatus(peer.getPeerId())?.connected === true && peer.peerStatus(victim.getPeerId())?.connected === true, 10_000, 'connected');

    // 1. The path replays every DATA_UP of the victim twice: the relay forwards each once.
    path.duplicateData = 2;
    const first = await exchange(nms, victim, peer, 500, '500 messages through a replaying path');
    path.duplicateData = 0;
    assert.deepEqual(first, Array.from({ length: 500 }, (_, i) => i));
    const dup = peer.peerStatus(victim.getPeerId())?.duplicatePackets;
    assert.equal(dup, 0, 'no replayed datagram reached the peer: the relay dropped them');

    // 2. An attacker at another address replays everything the path saw, both ways, then replays back whatever the relay sends it.
    const mallory = await bound();
    sockets.push(mallory);
    const toMallory: Buffer[] = [];
    mallory.on('message', (m) => toMallory.push(Buffer.from(m)));
    for (const d of [...path.up, ...path.down]) mallory.send(d, relay.port, '127.0.0.1');
    await pump(nms, () => toMallory.length > 0, 2000, 'a challenge to the attacker').catch(() => undefined);
    for (const d of toMallory.slice()) mallory.send(d, relay.port, '127.0.0.1');
    for (let i = 0; i < 20; i++) await nextFrame();
    assert.equal(toMallory.filter((d) => d[0] === RelayMsg.DataDown).length, 0, 'the attacker receives no data');
    assert.ok(toMallory.every((d) => d[0] === RelayMsg.SealedDown || d[0] === RelayMsg.NoSession || d[0] === RelayMsg.Pong), `at most pongs (to its replayed pings) and sealed challenges it cannot open: ${toMallory.map((d) => d[0]).join(',')}`);
    const both = await exchange(nms, peer, victim, 200, '200 messages after the takeover attempt');
    assert.equal(both.length, 200, 'the session is still the victim\'s');

    // 3. 1,000 strangers, each with a relay session of its own, ask for a link to the victim's public route and push data.
    const token = decodeRoute(victim.route as string).entries[0]?.token as Uint8Array;
    const provider = new NodeCryptoProvider();
    const linksBefore = new Set(path.downLinks);
    const victimBefore = victim.getStats().endpoint;
    let answered = 0;
    const strangers: { sock: dgram.Socket; hop: HopSession }[] = [];
    for (let i = 0; i < 1000; i++) {
      const sock = await bound(`127.1.${Math.floor(i / 50)}.${(i % 50) + 1}`);
      sockets.push(sock);
      const hop = new HopSession(provider, keyed.publicKey);
      strangers.push({ sock, hop });
      sock.on('message', (m) => {
        if (m[0] === RelayMsg.Pong) {
          const pong = hop.open(m);
          if (pong?.type === 'pong') sock.send(hop.request(pong.cookie), relay.port, '127.0.0.1');
        } else if (m[0] === RelayMsg.SessionOk && hop.accept(m)) {
          answered++;
          sock.send(hop.seal(hop.linkRequest(1, token)), relay.port, '127.0.0.1');
          for (let link = 0; link < 4; link++) sock.send(hop.dataUp(link, new Uint8Array(200)), relay.port, '127.0.0.1');
        }
      });
      sock.send(hop.ping(), relay.port, '127.0.0.1');
      if (i % 50 === 49) await pump(nms, () => true, 0, 'a frame');
    }
    // Meanwhile the victim opens a newcomer, which opens the victim: it links through the crowd.
    const newcomer = new NetworkManager({ relays: [relay.address], bindAddress: '127.0.0.1' });
    nms.push(newcomer);
    await pump(nms, () => newcomer.route !== null && answered >= 1000, 10_000, 'the newcomer\'s route and 1,000 stranger sessions');
    victim.openPeer(newcomer.getPeerId(), newcomer.route as string);
    newcomer.openPeer(victim.getPeerId(), victim.route as string);
    for (const nm of [victim, newcomer]) nm.openChannel(nm === victim ? newcomer.getPeerId() : victim.getPeerId(), 1, true);
    await pump(nms, () => victim.peerStatus(newcomer.getPeerId())?.connected === true && newcomer.peerStatus(victim.getPeerId())?.connected === true, 10_000, 'the newcomer connected');
    const fresh = await exchange(nms, newcomer, victim, 100, '100 messages from the newcomer');
    assert.equal(fresh.length, 100);
    // The only new links the victim's relay session carries are the newcomer's; no stranger's datagram came down.
    const newLinks = [...path.downLinks].filter((l) => !linksBefore.has(l));
    assert.ok(newLinks.length <= 1, `new links to the victim: ${newLinks.join(', ')}`);
    const stats = victim.getStats();
    // A stranger's 200 zero bytes reaching the endpoint would be a malformed datagram or one for no connection.
    assert.equal(stats.endpoint.datagramsMalformed - victimBefore.datagramsMalformed, 0, 'no stranger datagram reached the victim\'s endpoint');
    assert.equal(stats.endpoint.unknownConnection - victimBefore.unknownConnection, 0, 'no stranger datagram reached the victim\'s endpoint');
    console.log(`# relay attacks: ${first.length} messages through a replaying path, duplicates at the peer ${dup}; attacker got ${toMallory.length} datagrams, 0 data; ${answered} strangers with sessions, ${stats.relay?.offersReceived ?? 0} offers at the victim, new links ${newLinks.length}`);
  } finally {
    for (const nm of nms) nm.close();
    for (const s of sockets) s.close();
    path.close();
    relay.proc.kill('SIGKILL');
  }
});

// The second half of `npm start`: an embedded relay and two peers (the Discord-style NetworkManager)
// connected through it, with fake loss. Each peer records every address it receives datagrams from:
// only the relay's appears, never the other peer's.
import { NetworkManager } from '../api/network-manager.js';
import { addressKey } from '../relay/protocol.js';
import { RelayServer } from '../io/relay-server.js';

/** Runs for `seconds`; resolves true when every reliable message arrived, once and in order. */
export async function relayDemo(seconds: number, lossPct: number): Promise<boolean> {
  const relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true });
  const relays = [relay.address];
  console.log(`\nrelay demo: an embedded relay on ${relays[0]}, two peers (NetworkManager) connected through it, ${lossPct}% fake loss, ${seconds} s`);
  const seen = [new Set<string>(), new Set<string>()];
  const config = { FakePacketLoss_Send: lossPct };
  const alice = new NetworkManager({ relays, connectionConfig: config, relayOptions: { tap: (_d, from) => seen[0]?.add(addressKey(from)) } });
  const bob = new NetworkManager({ relays, connectionConfig: config, relayOptions: { tap: (_d, from) => seen[1]?.add(addressKey(from)) } });
  const peers = [alice, bob] as const;
  const got = [{ loot: [] as number[], pos: 0 }, { loot: [] as number[], pos: 0 }];
  peers.forEach((nm, i) => nm.on('message', (_p, ch, data) => (ch === 1 ? got[i]?.loot.push(data[0] ?? -1) : got[i] && got[i].pos++)));
  for (let i = 0; i < 300 && (!alice.route || !bob.route); i++) await sleep(10);
  if (!alice.route || !bob.route) throw new Error('the relay gave no route');
  console.log(`  alice's route: ${alice.route}`);
  // The lobby's job in a game: each side learns the other's peer id and route.
  alice.openPeer(bob.getPeerId(), bob.route);
  bob.openPeer(alice.getPeerId(), alice.route);
  for (const [me, other] of [[alice, bob], [bob, alice]] as const) {
    me.openChannel(other.getPeerId(), 0, false);
    me.openChannel(other.getPeerId(), 1, true);
  }
  const sent = [{ loot: 0, pos: 0 }, { loot: 0, pos: 0 }];
  const frames = Math.round(seconds * 30);
  const frame = (n: number, send: boolean): void => {
    peers.forEach((me, i) => {
      me.runCallbacks();
      const other = peers[1 - i] as NetworkManager;
      const s = sent[i] as { loot: number; pos: number };
      if (send) {
        if (me.sendMessage(other.getPeerId(), 0, new Uint8Array(20)) === 0) s.pos++;
        if (n % 3 === 0 && me.sendMessage(other.getPeerId(), 1, Uint8Array.of(s.loot & 0xff, 0, 0, 0)) === 0) s.loot++;
      }
      me.flush();
    });
  };
  for (let n = 0; n < frames; n++) {
    frame(n, true);
    await sleep(33);
  }
  for (let i = 0; i < 150 && (got[0]?.loot.length !== sent[1]?.loot || got[1]?.loot.length !== sent[0]?.loot); i++) {
    frame(0, false);
    await sleep(20);
  }
  let ok = true;
  peers.forEach((me, i) => {
    const g = got[i] as { loot: number[]; pos: number };
    const s = sent[1 - i] as { loot: number; pos: number };
    const inOrder = g.loot.length === s.loot && g.loot.every((v, k) => v === (k & 0xff));
    ok &&= inOrder;
    const name = i === 0 ? 'alice' : 'bob';
    const status = me.peerStatus(peers[1 - i]?.getPeerId() ?? 0n);
    console.log(`  ${name}: loot (reliable, channel 1) ${g.loot.length}/${s.loot}${inOrder ? ', each once, in order' : ', NOT ALL IN ORDER'}; positions (unreliable, channel 0) ${g.pos}/${s.pos}; received datagrams only from ${[...(seen[i] ?? [])].join(', ')}; ${status?.handshakes ?? 0} handshake`);
  });
  const st = relay.node.stats;
  console.log(`  relay: ${relay.node.sessionCount} sessions, ${relay.node.linkCount} link, ${st.forwardedPackets} datagrams forwarded (${st.forwardedBytes} bytes of ciphertext it cannot read)`);
  alice.close();
  bob.close();
  relay.close();
  return ok;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

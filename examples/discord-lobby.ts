// The GameSDK networking example "Connecting to Another Player in a Lobby" (seed 000), on netlane.
// Two players join a lobby, publish their peer id and route as member metadata, open each other,
// open an unreliable channel 0 and a reliable channel 1, and send positions and loot drops. Every
// byte goes through a relay; neither player learns the other's address.
//
//   node dist/examples/discord-lobby.js [--relay HOST:PORT#KEY]... [--seconds N]
//
// Without --relay an embedded relay runs in this process (as `netlane relay --open` would).
import { NetworkManager, RelayServer } from '../src/index.js';
import { LobbyService, type LobbyManager } from './lobby.js';

function args(): { relays: string[]; seconds: number } {
  const relays: string[] = [];
  let seconds = 3;
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--relay') relays.push(a[++i] ?? '');
    else if (a[i] === '--seconds') seconds = Number(a[++i]);
    else throw new Error(`unknown argument ${a[i]}`);
  }
  return { relays, seconds };
}

/** One player: the seed example's code, per player. */
class Player {
  readonly name: string;
  readonly network: NetworkManager;
  readonly lobbyManager: LobbyManager;
  readonly userId: bigint;
  lobbyId = 0n;
  otherPeerId = 0n;
  readonly received = { loot: [] as number[], positions: 0 };
  lootSent = 0;
  positionsSent = 0;

  constructor(name: string, userId: bigint, lobbies: LobbyService, relays: string[]) {
    this.name = name;
    this.userId = userId;
    this.network = new NetworkManager({ relays });
    this.lobbyManager = lobbies.manager(userId);

    // This will fire once you connect to the relay, telling you which route is yours.
    this.network.on('routeUpdate', (route) => {
      console.log(`${name}: my route is ${route.length} characters (relay addresses and a token only)`);
      if (this.lobbyId !== 0n) this.lobbyManager.updateMember(this.lobbyId, { route });
    });

    // When other users get new routes, they update their metadata: fetch it and update their route.
    this.lobbyManager.onMemberUpdate((lobbyId, userId) => {
      if (userId === this.userId) return;
      const rawPeerId = this.lobbyManager.getMemberMetadataValue(lobbyId, userId, 'peer_id');
      const route = this.lobbyManager.getMemberMetadataValue(lobbyId, userId, 'route');
      if (rawPeerId === null || route === null) return;
      const peerId = BigInt(rawPeerId);
      if (this.otherPeerId === 0n) this.connect(peerId, route);
      else this.network.updatePeer(peerId, route);
    });

    this.network.on('message', (_peerId, channelId, data) => {
      if (channelId === 1) this.received.loot.push(new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0));
      else this.received.positions++;
    });
  }

  /** `lobbyManager.ConnectLobby(12345, "password", ...)` and what the example does in its callback. */
  joinLobby(lobbyId: bigint, secret: string): void {
    if (!this.lobbyManager.connectLobby(lobbyId, secret)) throw new Error('wrong lobby secret');
    this.lobbyId = lobbyId;
    // Add our own peer id (and route, if we have one yet) to our member metadata.
    const route = this.network.route;
    this.lobbyManager.updateMember(lobbyId, { peer_id: this.network.getPeerId().toString(), ...(route ? { route } : {}) });
    // Connect to the first other member that has published a peer id and a route.
    for (let i = 0; i < this.lobbyManager.memberCount(lobbyId); i++) {
      const memberId = this.lobbyManager.getMemberUserId(lobbyId, i);
      if (memberId === null || memberId === this.userId) continue;
      const rawPeerId = this.lobbyManager.getMemberMetadataValue(lobbyId, memberId, 'peer_id');
      const otherRoute = this.lobbyManager.getMemberMetadataValue(lobbyId, memberId, 'route');
      if (rawPeerId !== null && otherRoute !== null) this.connect(BigInt(rawPeerId), otherRoute);
    }
  }

  connect(peerId: bigint, route: string): void {
    this.otherPeerId = peerId;
    this.network.openPeer(peerId, route);
    // Open an unreliable channel to the user on channel 0, and a reliable one on channel 1.
    this.network.openChannel(peerId, 0, false);
    this.network.openChannel(peerId, 1, true);
    console.log(`${this.name}: opened peer ${peerId} with channels 0 (unreliable) and 1 (reliable)`);
  }

  /** One frame: RunCallbacks at the start, game logic, Flush at the end. */
  frame(n: number): void {
    this.network.runCallbacks();
    if (this.otherPeerId !== 0n) {
      // Player positions: eventually consistent, on the unreliable channel, every frame.
      this.network.sendMessage(this.otherPeerId, 0, new Uint8Array(24));
      this.positionsSent++;
      // A loot drop every tenth frame: it has to get there, on the reliable channel.
      if (n % 10 === 0) {
        const loot = new Uint8Array(64);
        new DataView(loot.buffer).setUint32(0, this.lootSent++);
        this.network.sendMessage(this.otherPeerId, 1, loot);
      }
    }
    this.network.flush();
  }
}

async function main(): Promise<void> {
  const opts = args();
  let relay: RelayServer | null = null;
  if (opts.relays.length === 0) {
    relay = RelayServer.open({ address: '127.0.0.1', port: 0, open: true });
    opts.relays.push(relay.address);
    console.log(`embedded relay on ${relay.address}`);
  }
  const lobbies = new LobbyService();
  const alice = new Player('alice', 53908232506183680n, lobbies, opts.relays);
  const bob = new Player('bob', 290926798626357250n, lobbies, opts.relays);
  // Wait for both routes before joining, as a game would wait for OnRouteUpdate.
  for (let i = 0; i < 200 && (alice.network.route === null || bob.network.route === null); i++) await new Promise((r) => setTimeout(r, 10));
  if (alice.network.route === null || bob.network.route === null) throw new Error('no route from the relays');
  alice.joinLobby(12345n, 'password');
  bob.joinLobby(12345n, 'password');
  const frames = Math.round(opts.seconds * 60);
  for (let n = 0; n < frames; n++) {
    alice.frame(n);
    bob.frame(n);
    await new Promise((r) => setTimeout(r, 1000 / 60));
  }
  // Let the last reliable messages arrive.
  for (let i = 0; i < 60 && (alice.received.loot.length < bob.lootSent || bob.received.loot.length < alice.lootSent); i++) {
    alice.frame(1);
    bob.frame(1);
    await new Promise((r) => setTimeout(r, 16));
  }
  for (const [me, other] of [
    [alice, bob],
    [bob, alice],
  ] as const) {
    const inOrder = me.received.loot.every((v, i) => v === i);
    console.log(`${me.name}: loot ${me.received.loot.length}/${other.lootSent} received${inOrder ? ', each once, in order' : ', OUT OF ORDER'}; positions ${me.received.positions}/${other.positionsSent}`);
  }
  const st = alice.network.getStats();
  console.log(`alice: relay ${alice.network.relay.primary?.address}:${alice.network.relay.primary?.port}, ${st.relay.datagramsSent} datagrams sent, ${st.droppedNoChannel + st.droppedWrongReliability} messages dropped for a closed channel`);
  alice.network.close();
  bob.network.close();
  relay?.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

// The receive path opens every packet of the process in one shared scratch and one shared plaintext
// buffer, and builds every packet in one shared scratch (src/core/packet-receiver.ts, packet-builder.ts,
// src/crypto/protection.ts). What a user must still see: every message is the bytes its sender sent, and
// a message kept by the application never changes when later packets, of any connection, arrive.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConnectionState, Result, SendFlags, type NetworkingMessage } from '../../src/index.js';
import { SeededRng } from '../../src/util/rng.js';
import { inSim } from '../support/sockets-world.js';

const CLIENTS = 3;
const MESSAGES = 150;
const LOSSY = { FakePacketLoss_Send: 5, FakePacketLag_Send: 10 };

/** Message `index` of client `client`: a 5-byte tag (client, index) then bytes that follow from both. */
function message(client: number, index: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = client;
  new DataView(b.buffer).setUint32(1, index);
  for (let k = 5; k < size; k++) b[k] = (client * 31 + index * 7 + k) & 0xff;
  return b;
}

/** Whether `data` is exactly the message its tag names (and its size). */
function intact(data: Uint8Array): boolean {
  if (data.length < 5) return false;
  const want = message(data[0] as number, new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1), data.length);
  return Buffer.from(data).equals(Buffer.from(want));
}

describe('shared packet buffers', () => {
  it('messages of several connections arrive intact and keep their bytes while later packets arrive', (t) =>
    inSim(t, 5501, (w) => {
      const server = w.server(LOSSY);
      const clients = Array.from({ length: CLIENTS }, () => w.client(server, LOSSY));
      w.until(
        () => server.conns.length === CLIENTS && clients.every((c) => c.sockets.getConnectionInfo(c.conn)?.state === ConnectionState.Connected),
        10_000,
        'every client connected',
      );
      const rng = new SeededRng(7);
      const kept: NetworkingMessage[] = [];
      const firstBytes: Uint8Array[] = [];
      const take = (): void => {
        for (const conn of server.conns) {
          for (const m of server.sockets.receiveMessagesOnConnection(conn, 64) ?? []) {
            assert.ok(intact(m.data), `message from connection ${conn} arrived altered`);
            kept.push(m);
            firstBytes.push(m.data.slice());
          }
        }
      };
      let reliable = 0;
      for (let i = 0; i < MESSAGES; i++) {
        for (let c = 0; c < CLIENTS; c++) {
          const client = clients[c]!;
          // Small ones (one packet, many per packet), ones near a packet, and reliable ones over several packets.
          const size = [5 + rng.int(0, 100), 900 + rng.int(0, 400), 2000 + rng.int(0, 3000)][i % 3] as number;
          const flags = i % 4 === 3 && size < 1200 ? SendFlags.Unreliable : SendFlags.Reliable;
          if (flags === SendFlags.Reliable) reliable++;
          assert.equal(client.sockets.sendMessageToConnection(client.conn, message(c, i, size), flags).result, Result.OK);
        }
        w.run(2, take);
      }
      w.until(() => kept.filter((m) => m.flags === SendFlags.Reliable).length >= reliable, 20_000, 'every reliable message received', take);
      assert.ok(kept.length > reliable, `some unreliable messages arrived too (${kept.length - reliable})`);
      for (let k = 0; k < kept.length; k++) {
        const m = kept[k]!;
        assert.ok(Buffer.from(m.data).equals(Buffer.from(firstBytes[k]!)), `message ${k} (connection ${m.connection}, ${m.data.length} B) changed after it was received`);
        assert.ok(intact(m.data), `message ${k} is not what was sent`);
      }
    }));
});

// UdpSocket counts the sends the kernel refuses, while checking only one send in SEND_CHECK_EVERY of a healthy
// socket (a checked send costs Node a tick): once a send fails, every send is checked (src/io/udp.ts).
// A datagram above 65,507 bytes is refused by the kernel (EMSGSIZE) on every platform netlane runs on.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { SEND_CHECK_EVERY, UdpSocket } from '../../src/io/udp.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const TO = { address: '127.0.0.1', port: 9 };

test('a socket whose sends fail counts every failure once it has seen one; a working socket counts none', async () => {
  const s = UdpSocket.open({ address: '127.0.0.1', port: 0 });
  try {
    const ok = new Uint8Array(16);
    for (let i = 0; i < 3 * SEND_CHECK_EVERY; i++) s.send(ok, TO);
    await turn();
    assert.equal(s.sendErrors, 0, 'datagrams the kernel takes are no errors');
    const tooBig = new Uint8Array(70_000);
    const N = 4 * SEND_CHECK_EVERY;
    // One per event-loop turn: a failure is seen before the next send goes.
    for (let i = 0; i < N; i++) {
      s.send(tooBig, TO);
      await turn();
    }
    assert.ok(s.sendErrors >= N - SEND_CHECK_EVERY && s.sendErrors <= N, `${s.sendErrors} of ${N} refused sends counted (at most ${SEND_CHECK_EVERY} before the first is seen)`);
    // Now the socket is known to fail: a burst within one turn is counted whole.
    const before = s.sendErrors;
    for (let i = 0; i < N; i++) s.send(tooBig, TO);
    await turn();
    assert.equal(s.sendErrors - before, N, 'every send of a burst on a failing socket is counted');
  } finally {
    s.close();
  }
});

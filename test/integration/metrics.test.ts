// startMetricsServer fed by a NetworkingSockets with a connection over real UDP (and an embedded relay beside
// it): the Prometheus text, /stats.json's shape and figures, /health while the application says it drains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayServer, SendFlags, socketsMetrics, startMetricsServer } from '../../src/index.js';
import { connectedPair, waitFor } from './support.js';

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a server\'s metrics endpoint: connections by state, socket counters, a /stats.json entry per connection with its lanes, /health 503 while draining', async () => {
  const { server, client, sconn, close } = await connectedPair('127.0.0.1');
  const relay = RelayServer.open({ open: true });
  const endpoint = await startMetricsServer({ port: 0, sources: [socketsMetrics(server.sockets, { sockets: [server.listen] }), relay] });
  const plain = await startMetricsServer({ port: 0, sources: [client.sockets] });
  try {
    assert.equal(server.sockets.configureConnectionLanes(sconn, 2), 1);
    assert.equal(server.sockets.setConnectionName(sconn, 'player-1'), true);
    let got = 0;
    await waitFor(
      [server.sockets, client.sockets],
      () => {
        client.sockets.sendMessageToConnection(client.conn, new Uint8Array(200), SendFlags.Reliable);
        server.sockets.sendMessageToConnection(sconn, new Uint8Array(50), SendFlags.Unreliable, 1);
        got += server.sockets.receiveMessagesOnConnection(sconn, 64)?.length ?? 0;
        const st = server.sockets.getQuickConnectionStatus(sconn);
        return got >= 100 && (st?.ping ?? -1) >= 0 && (st?.inBytesPerSecond ?? 0) > 0;
      },
      10_000,
      '100 messages, a ping and a receive rate',
    );

    const received = server.sockets.getSocketStats(server.listen)?.datagramsReceived ?? 0;
    assert.ok(received > 10);
    const m = await get(endpoint.port, '/metrics');
    assert.equal(m.status, 200);
    assert.equal(sample(m.text, 'netlane_connections{state="Connected",source="0"}'), 1);
    assert.ok((sample(m.text, `netlane_socket_datagrams_received_total{socket="${server.listen}",source="0"}`) ?? 0) >= received, 'the listen socket\'s counters');
    assert.ok((sample(m.text, 'netlane_in_bytes_per_second{source="0"}') ?? 0) > 0, 'the receive rate');
    assert.equal(sample(m.text, 'netlane_relay_sessions{source="1"}'), 0, 'the relay beside it, labelled apart');
    assert.equal(m.text.match(/^# TYPE netlane_connections gauge$/gm)?.length, 1, 'one TYPE line per family');

    const snap = JSON.parse((await get(endpoint.port, '/stats.json')).text) as { kind: string; connections: { id: string; name: string; pingMs: number; qualityLocal: number; inBytesPerSec: number; queuedBytesPerLane: number[]; state: string }[]; totals: Record<string, number> };
    assert.equal(snap.kind, 'server', 'the first source\'s kind');
    assert.equal(snap.connections.length, 1);
    const c = snap.connections[0];
    assert.ok(c);
    assert.deepEqual([c.id, c.name, c.state, c.queuedBytesPerLane.length], [String(sconn), 'player-1', 'Connected', 2]);
    assert.ok(c.pingMs >= 0 && c.inBytesPerSec > 0, JSON.stringify(c));
    assert.ok((snap.totals['datagramsReceived'] ?? 0) >= received && snap.totals['sessions'] === 0 && snap.totals['connections'] === 1, JSON.stringify(snap.totals));

    const clientSnap = JSON.parse((await get(plain.port, '/stats.json')).text) as { connections: { name: string }[] };
    assert.equal(clientSnap.connections.length, 1, 'a NetworkingSockets passed as it is');
    assert.equal(clientSnap.connections[0]?.name, client.sockets.getConnectionInfo(client.conn)?.identityRemote, 'no name: the peer\'s identity');
    assert.doesNotMatch(JSON.stringify(clientSnap), /127\.0\.0\.1/);

    assert.equal((await get(endpoint.port, '/health')).status, 200);
    endpoint.draining = true;
    const h = await get(endpoint.port, '/health');
    assert.equal(h.status, 503);
    assert.equal((JSON.parse(h.text) as { status: string }).status, 'draining');
    endpoint.draining = false;
    relay.drain(5, () => {});
    assert.equal((await get(endpoint.port, '/health')).status, 503, 'a draining relay source');

    server.sockets.closeConnection(sconn);
    assert.equal((JSON.parse((await get(endpoint.port, '/stats.json')).text) as { connections: unknown[] }).connections.length, 0, 'a closed connection leaves the snapshot');
  } finally {
    await endpoint.close();
    await plain.close();
    relay.close();
    close();
  }
});

// The ValveSockets-CSharp configuration names (docs/PORTING.md "Configuration names"), taken literally: each
// is accepted wherever its GNS name is, and the seed's `TimeoutSeconds*` are seconds. Virtual time with a
// printed seed (replay: NETLANE_SEED=<seed>).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigScope, ConnectionState, GetConfigValueResult, SEED_CONFIG_ALIASES, type ConfigName, type SeedConfigName, type StatusChangedInfo } from '../../src/index.js';
import { MS, inSim } from '../support/sockets-world.js';

describe('ValveSockets-CSharp configuration names', () => {
  it('sets and reads every seed name as the GNS value it names, TimeoutSeconds* converted from seconds', (t) =>
    inSim(t, 4701, (w) => {
      const s = w.instance();
      for (const [seedName, { name, scale }] of Object.entries(SEED_CONFIG_ALIASES) as [SeedConfigName, { name: ConfigName; scale: number }][]) {
        const info = s.getConfigValueInfo(name);
        assert.ok(info, `${name} is a GNS value`);
        assert.equal(s.getConfigValueInfo(seedName)?.id, info.id, `${seedName} names ${name}`);
        if (info.readOnly || info.type === 5) continue;
        const v = info.def === null || info.def === info.max ? info.min : info.def + 1;
        const given = v / scale;
        assert.ok(s.setConfigValue(seedName, ConfigScope.SocketsInterface, 0, given), `setConfigValue(${seedName}, ${given})`);
        assert.deepEqual(s.getConfigValue(name, ConfigScope.SocketsInterface), { result: GetConfigValueResult.OK, value: v }, `${seedName} ${given} is ${name} ${v}`);
        assert.deepEqual(s.getConfigValue(seedName, ConfigScope.SocketsInterface), { result: GetConfigValueResult.OK, value: given }, `read back in the seed's unit`);
        assert.ok(s.setConfigValue(seedName, ConfigScope.SocketsInterface, 0, null));
      }
      const events: StatusChangedInfo[] = [];
      assert.ok(s.setConfigValue('ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => events.push(i)), 'the seed name of the status callback');
      assert.equal(s.getConfigValue('Callback_ConnectionStatusChanged', ConfigScope.SocketsInterface).result, GetConfigValueResult.OK);
      // The seed's units: 30 s is 30000 ms; a range is checked in netlane's unit.
      assert.ok(s.setGlobalConfigValue('TimeoutSecondsInitial', 30));
      try {
        assert.equal(s.getConfigValue('TimeoutInitial', ConfigScope.Global).value, 30_000);
        assert.equal(s.getConfigValue('TimeoutSecondsInitial', ConfigScope.Global).value, 30);
      } finally {
        s.setGlobalConfigValue('TimeoutInitial', null);
      }
      assert.ok(s.setConfigValue('TimeoutSecondsConnected', ConfigScope.SocketsInterface, 0, 2.5), 'fractions of a second');
      assert.equal(s.getConfigValue('TimeoutConnected', ConfigScope.SocketsInterface).value, 2500);
      assert.equal(s.setConfigValue('MinRate', ConfigScope.SocketsInterface, 0, -1), false, 'out of range as the GNS value is');
      assert.equal(s.setConfigValue('FakeMessageLossSend' as never, ConfigScope.SocketsInterface, 0, 1), false, 'a seed value netlane lacks is refused, not ignored');
    }));

  it('gives a literal TimeoutSecondsInitial 30 a 30 s connect timeout (not 30 ms)', (t) =>
    inSim(t, 4702, (w) => {
      const server = w.server();
      const s = w.instance();
      const events: StatusChangedInfo[] = [];
      assert.ok(s.setConfigValue('ConnectionStatusChanged', ConfigScope.SocketsInterface, 0, (i: StatusChangedInfo) => events.push(i)));
      assert.ok(s.setConfigValue('TimeoutSecondsInitial', ConfigScope.SocketsInterface, 0, 30));
      // Nobody listens on the next port: the handshake goes unanswered until the timeout.
      const conn = s.connect(`${server.address}:${server.port + 1}`);
      assert.notEqual(conn, 0);
      const t0 = s.time();
      w.run(29_000);
      assert.equal(s.getConnectionInfo(conn)?.state, ConnectionState.Connecting, 'still trying after 29 s');
      w.until(() => s.getConnectionInfo(conn)?.state === ConnectionState.ProblemDetectedLocally, 5000, 'connect timeout');
      const waited = (s.time() - t0) / MS;
      assert.equal(s.getConnectionInfo(conn)?.endReason, 5003);
      assert.ok(waited >= 29_900 && waited <= 31_000, `timed out after ${waited} ms`);
      assert.equal(events.at(-1)?.info.state, ConnectionState.ProblemDetectedLocally);
    }));

  it('takes seed names in the options of connect and createListenSocket', (t) =>
    inSim(t, 4703, (w) => {
      const { server, client, sconn } = w.pair({ TimeoutSecondsConnected: 7 }, { TimeoutSecondsConnected: 9, NagleTime: 0 });
      assert.equal(server.sockets.getConnectionConfigValue(sconn, 'TimeoutConnected'), 7000);
      assert.equal(client.sockets.getConnectionConfigValue(client.conn, 'TimeoutConnected'), 9000);
      assert.equal(client.sockets.getConnectionConfigValue(client.conn, 'TimeoutSecondsConnected'), 9);
    }));
});

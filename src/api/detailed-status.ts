import type { PeerInfo } from '../crypto/types.js';
import type { ConnectionStatus, LaneStatus } from '../core/stats.js';
import { STATE_NAMES } from '../core/state.js';
import type { ConnectionInfo } from './types.js';

const n = (v: number): string => Math.round(v).toLocaleString('en-US');
const pct = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : '-');
const queue = (us: number): string => (us >= Number.MAX_SAFE_INTEGER ? 'n/a (not connected)' : `${(us / 1000).toFixed(1)}ms`);
const quality = (q: number): string => (q < 0 ? '???' : `${(q * 100).toFixed(1)}%`);

/** The text of `getDetailedConnectionStatus`, laid out like GNS's (current rates, then lifetime totals). */
export function formatDetailedStatus(info: ConnectionInfo, s: ConnectionStatus, peer: PeerInfo | null, lanes: number, lane: (i: number) => LaneStatus | null): string {
  const lines: string[] = [];
  const end = info.endReason ? `, reason ${info.endReason}: ${info.endDebug}` : '';
  lines.push(`Connection ${info.connectionDescription}: ${STATE_NAMES.get(info.state) ?? info.state}${end}`);
  if (peer) lines.push(`    Peer: ${peer.identity} key ${peer.keyFingerprint}, ${peer.authenticated ? 'authenticated' : 'unauthenticated'}, cipher ${peer.cipher}`);
  lines.push('    Current rates:');
  lines.push(`        Sent: ${n(s.outPacketsPerSec)} pkts/sec  ${(s.outBytesPerSec / 1024).toFixed(1)} K/sec`);
  lines.push(`        Recv: ${n(s.inPacketsPerSec)} pkts/sec  ${(s.inBytesPerSec / 1024).toFixed(1)} K/sec`);
  lines.push(`        Ping: ${s.ping < 0 ? '???' : `${s.ping}ms`}  (min ${s.ping < 0 ? '???' : `${(s.rttMinUs / 1000).toFixed(2)}ms`}, variance ${s.ping < 0 ? '???' : `${(s.rttVarianceUs / 1000).toFixed(2)}ms`})`);
  lines.push(`        Quality: local ${quality(s.connectionQualityLocal)}  remote ${quality(s.connectionQualityRemote)}`);
  lines.push(`        Send rate: ${(s.sendRateBytesPerSec / 1024).toFixed(1)} KB/s  window ${n(s.cwndBytes)} B, in flight ${n(s.bytesInFlight)} B`);
  lines.push(`        Bytes buffered: reliable ${n(s.pendingReliable)}, unreliable ${n(s.pendingUnreliable)}, sent unacked ${n(s.sentUnackedReliable)}; queue time ${queue(s.queueTimeUs)}`);
  lines.push('    Lifetime stats:');
  lines.push(`        Sent: ${n(s.packetsSent)} pkts  ${n(s.bytesSent)} bytes  ${n(s.messagesSent)} msgs`);
  lines.push(`        Recv: ${n(s.packetsReceived)} pkts  ${n(s.bytesReceived)} bytes  ${n(s.messagesReceived)} msgs`);
  lines.push(`        Lost: ${n(s.packetsLost)} (${pct(s.packetsLost, s.packetsSent)}, ${n(s.packetsSpuriouslyRetransmitted)} spurious)  Retransmitted: ${n(s.retransmittedBytes)} bytes  Duplicate recv: ${n(s.duplicatePackets)}`);
  lines.push(`        Refused (buffers full): ${n(s.refusedPackets)}  Failed authentication: ${n(s.badPackets)}  Key updates: ${s.keyUpdates}`);
  lines.push(`        Unreliable dropped: ${n(s.unreliableDroppedSend)} before sending, ${n(s.unreliableDroppedRecv)} on receive`);
  for (let i = 0; i < lanes; i++) {
    const l = lane(i);
    if (l) lines.push(`    Lane ${i}: pending reliable ${n(l.pendingReliable)}, unreliable ${n(l.pendingUnreliable)}, sent unacked ${n(l.sentUnackedReliable)}, queue time ${queue(l.queueTimeUs)}`);
  }
  return lines.join('\n') + '\n';
}

// node-datachannel's RTCPeerConnection standing in for a browser's, in Node: on 127.0.0.1 only (its host
// candidates and checks stay on loopback), seen through the browser transport's interface (its typings lean on
// the DOM's, which this build has not).
import ndc from 'node-datachannel';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import type { RtcPeerConnectionLike } from '../../src/io/browser/webrtc-transport.js';

export function loopbackPeerConnection(): RtcPeerConnectionLike {
  const peerConnection = new ndc.PeerConnection('netlane-test', { iceServers: [], bindAddress: '127.0.0.1' });
  return new (RTCPeerConnection as unknown as new (config: object) => RtcPeerConnectionLike)({ iceServers: [], peerConnection });
}

/** node-datachannel holds the process until its global cleanup(), closed connections or not: a process that used WebRTC calls this last. */
export function releaseWebRtc(): void {
  ndc.cleanup();
}

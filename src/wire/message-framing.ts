import { varintSize, type Writer } from './writer.js';

/**
 * In-stream framing of reliable messages (docs/WIRE_FORMAT.md "Reliable stream framing").
 * Each message in a lane's reliable byte stream is preceded by
 *
 *   varint(size * 2 + g) [varint(gap - 2) if g = 1] | size bytes of message
 *
 * where gap is this message's number minus the previous reliable message's number on the lane (message
 * numbers are shared with unreliable messages, so gaps above 1 happen). g = 0 means gap = 1.
 * A message of up to 31 bytes costs one framing byte.
 */
export function encodeMessageHeader(w: Writer, size: number, gap: number): void {
  if (gap === 1) {
    w.varint(size * 2, 'message.size');
  } else {
    w.varint(size * 2 + 1, 'message.size');
    w.varint(gap - 2, 'message.gap');
  }
}

/** Bytes {@link encodeMessageHeader} writes. */
export function messageHeaderSize(size: number, gap: number): number {
  return gap === 1 ? varintSize(size * 2) : varintSize(size * 2 + 1) + varintSize(gap - 2);
}

/** The most bytes a message header can take. */
export const MAX_MESSAGE_HEADER_SIZE = 16;

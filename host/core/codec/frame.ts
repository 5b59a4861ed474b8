import { ProtocolError, malformed } from '../errors.js';
import { Reason } from './constants.js';

/** Receives each complete packet; returns false to stop framing (the connection is closing). */
export type PacketSink = (header: number, body: Uint8Array) => boolean;

/**
 * Splits a byte stream into MQTT packets (§2.1): fixed header byte, Remaining Length, body.
 * A packet inside one chunk is passed as a view of that chunk; one spanning chunks is assembled
 * once into a buffer of its final size.
 */
export class Framer {
  private partial: Uint8Array | null = null;
  private partialLen = 0;
  /** Size of the packet being assembled, 0 while its fixed header is still incomplete. */
  private partialTotal = 0;
  private partialBodyStart = 0;

  constructor(public maxPacketSize: number) {}

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.partialLen;
  }

  push(chunk: Uint8Array, sink: PacketSink): void {
    let off = 0;
    if (this.partial) {
      off = this.continuePartial(chunk);
      if (off < 0) return;
      const packet = this.partial!;
      const bodyStart = this.partialBodyStart;
      this.partial = null;
      this.partialLen = 0;
      this.partialTotal = 0;
      if (!sink(packet[0]!, packet.subarray(bodyStart))) return;
    }
    const n = chunk.length;
    while (off < n) {
      const header = this.readHeader(chunk, off, n);
      if (header === null) {
        this.partial = new Uint8Array(5);
        this.partial.set(chunk.subarray(off, n));
        this.partialLen = n - off;
        return;
      }
      const [bodyStart, total] = header;
      if (off + total > n) {
        this.partial = new Uint8Array(total);
        this.partial.set(chunk.subarray(off, n));
        this.partialLen = n - off;
        this.partialTotal = total;
        this.partialBodyStart = bodyStart - off;
        return;
      }
      const keepGoing = sink(chunk[off]!, chunk.subarray(bodyStart, off + total));
      off += total;
      if (!keepGoing) return;
    }
  }

  /** Feeds a chunk into the packet being assembled; returns where the chunk's unused bytes start, or -1. */
  private continuePartial(chunk: Uint8Array): number {
    let off = 0;
    if (this.partialTotal === 0) {
      const head = this.partial!;
      while (off < chunk.length && this.partialLen < 5) {
        head[this.partialLen++] = chunk[off++]!;
        const header = this.readHeader(head, 0, this.partialLen);
        if (header !== null) {
          const [bodyStart, total] = header;
          const packet = new Uint8Array(total);
          packet.set(head.subarray(0, this.partialLen));
          this.partial = packet;
          this.partialTotal = total;
          this.partialBodyStart = bodyStart;
          break;
        }
      }
      if (this.partialTotal === 0) return -1;
    }
    const take = Math.min(this.partialTotal - this.partialLen, chunk.length - off);
    this.partial!.set(chunk.subarray(off, off + take), this.partialLen);
    this.partialLen += take;
    off += take;
    return this.partialLen === this.partialTotal ? off : -1;
  }

  /** Parses the Remaining Length at buf[off+1..]; returns [body start, whole packet size] or null if incomplete. */
  private readHeader(buf: Uint8Array, off: number, end: number): [number, number] | null {
    let value = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      if (off + i >= end) return null;
      const byte = buf[off + i]!;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 1) throw malformed('remaining length is not minimally encoded [MQTT-1.5.5-1]');
        const total = 1 + i + value;
        if (total > this.maxPacketSize) {
          throw new ProtocolError(Reason.PacketTooLarge, `packet of ${total} bytes exceeds the maximum of ${this.maxPacketSize}`);
        }
        return [off + 1 + i, total];
      }
      multiplier *= 128;
    }
    throw malformed('remaining length is longer than four bytes');
  }
}

import { ProtocolError, malformed } from './errors.js';
import { Reason } from './constants.js';

/**
 * Receives each complete packet as `buf[bodyStart, bodyEnd)` plus its fixed header byte; returns
 * false to stop framing (the connection is closing). The bytes are valid only during the call.
 */
export type PacketSink = (header: number, buf: Uint8Array, bodyStart: number, bodyEnd: number) => boolean;

/** Smallest buffer a packet spanning chunks starts in (it doubles as bytes arrive). */
const MIN_PARTIAL = 256;

/**
 * Splits a byte stream into MQTT packets (§2.1): fixed header byte, Remaining Length, body.
 * A packet inside one chunk is passed in place; one spanning chunks is assembled in a buffer that
 * grows (doubling) with the bytes that actually arrived, up to the packet's size — never allocated
 * at its declared size up front, so a header claiming 16 MiB followed by a trickle costs what was
 * sent, not 16 MiB. Parsing state lives in fields, so framing allocates nothing else.
 */
export class Framer {
  private partial: Uint8Array | null = null;
  private partialLen = 0;
  /** Size of the packet being assembled, 0 while its fixed header is still incomplete. */
  private partialTotal = 0;
  private partialBodyStart = 0;
  /** Results of readHeader. */
  private bodyStart = 0;
  private total = 0;

  constructor(public maxPacketSize: number) {}

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.partialLen;
  }

  /** Bytes allocated for the incomplete packet (at most twice what arrived of it, and at most its size). */
  get allocated(): number {
    return this.partial === null ? 0 : this.partial.length;
  }

  /**
   * Frames `buf[start, end)`. `refresh`, when given, returns the current view of `buf`'s memory
   * after each packet (a wasm memory view is detached when the sink makes memory grow).
   */
  push(buf: Uint8Array, start: number, end: number, sink: PacketSink, refresh?: () => Uint8Array): void {
    let off = start;
    if (this.partial) {
      off = this.continuePartial(buf, start, end);
      if (off < 0) return;
      const packet = this.partial!;
      const bodyStart = this.partialBodyStart;
      const total = this.partialTotal;
      this.partial = null;
      this.partialLen = 0;
      this.partialTotal = 0;
      if (!sink(packet[0]!, packet, bodyStart, total)) return;
      if (refresh) buf = refresh();
    }
    while (off < end) {
      if (!this.readHeader(buf, off, end)) {
        this.partial = new Uint8Array(5);
        this.partial.set(buf.subarray(off, end));
        this.partialLen = end - off;
        return;
      }
      const total = this.total;
      if (off + total > end) {
        this.partialTotal = total;
        this.partialBodyStart = this.bodyStart - off;
        this.partial = null;
        this.partialLen = 0;
        this.append(buf, off, end);
        return;
      }
      const keepGoing = sink(buf[off]!, buf, this.bodyStart, off + total);
      off += total;
      if (!keepGoing) return;
      if (refresh) buf = refresh();
    }
  }

  /** Feeds bytes into the packet being assembled; returns where the unused bytes start, or -1. */
  private continuePartial(buf: Uint8Array, start: number, end: number): number {
    let off = start;
    if (this.partialTotal === 0) {
      const head = this.partial!;
      while (off < end && this.partialLen < 5) {
        head[this.partialLen++] = buf[off++]!;
        if (this.readHeader(head, 0, this.partialLen)) {
          this.partialTotal = this.total;
          this.partialBodyStart = this.bodyStart;
          const have = this.partialLen;
          this.partial = null;
          this.partialLen = 0;
          this.append(head, 0, have);
          break;
        }
      }
      if (this.partialTotal === 0) return -1;
    }
    const take = Math.min(this.partialTotal - this.partialLen, end - off);
    this.append(buf, off, off + take);
    off += take;
    return this.partialLen === this.partialTotal ? off : -1;
  }

  /** Appends bytes of the packet being assembled, growing its buffer as needed (never past its size). */
  private append(buf: Uint8Array, start: number, end: number): void {
    const needed = this.partialLen + (end - start);
    const current = this.partial;
    if (current === null || current.length < needed) {
      const grown = new Uint8Array(Math.min(this.partialTotal, Math.max(needed, MIN_PARTIAL, current === null ? 0 : current.length * 2)));
      if (current !== null) grown.set(current.subarray(0, this.partialLen));
      this.partial = grown;
    }
    this.partial!.set(buf.subarray(start, end), this.partialLen);
    this.partialLen = needed;
  }

  /**
   * Parses the Remaining Length at buf[off+1..]: sets bodyStart and total (whole packet size) and
   * returns true, or returns false if the header is incomplete.
   */
  private readHeader(buf: Uint8Array, off: number, end: number): boolean {
    let value = 0;
    let multiplier = 1;
    for (let i = 1; i <= 4; i++) {
      if (off + i >= end) return false;
      const byte = buf[off + i]!;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 1) throw malformed('remaining length is not minimally encoded [MQTT-1.5.5-1]');
        const total = 1 + i + value;
        if (total > this.maxPacketSize) {
          throw new ProtocolError(Reason.PacketTooLarge, `packet of ${total} bytes exceeds the maximum of ${this.maxPacketSize}`);
        }
        this.bodyStart = off + 1 + i;
        this.total = total;
        return true;
      }
      multiplier *= 128;
    }
    throw malformed('remaining length is longer than four bytes');
  }
}

import { ProtocolError, malformed } from './errors.js';
import { Reason } from './constants.js';

/**
 * Where a Framer's packets go: an object rather than a function, so that a broker connection can be
 * its own sink without a closure per connection.
 */
export interface PacketSink {
  /**
   * Receives each complete packet as `buf[bodyStart, bodyEnd)` plus its fixed header byte; returns
   * false to stop framing (the connection is closing). The bytes are valid only during the call.
   */
  onPacket(header: number, buf: Uint8Array, bodyStart: number, bodyEnd: number): boolean;
}

/** Smallest buffer a packet spanning chunks starts in (it doubles as bytes arrive). */
const MIN_PARTIAL = 256;

/**
 * Memory a packet spanning chunks can be assembled in at its final size (the broker's arena: the
 * wasm Core has these methods). Its view may be replaced when the memory grows.
 */
export interface PacketArea {
  /** A region of `size` bytes: its handle, or 0 when there is no room. */
  alloc(size: number): number;
  /** Where the region starts in bytes(). */
  ptr(handle: number): number;
  bytes(): Uint8Array;
  /** The region is no longer needed. */
  unref(handle: number): unknown;
}

/**
 * Splits a byte stream into MQTT packets (§2.1): fixed header byte, Remaining Length, body.
 * A packet inside one chunk is passed in place. One spanning chunks is assembled:
 * - in `area` when one is set (the connection sets it once the client is authenticated), allocated
 *   once at the packet's size as soon as its header is read, each chunk's bytes copied straight to
 *   their place (see `owed`);
 * - otherwise in a buffer that grows (doubling) with the bytes that actually arrived, up to the
 *   packet's size — never allocated at its declared size up front, so a header claiming 16 MiB
 *   followed by a trickle costs what was sent, not 16 MiB.
 * Parsing state lives in fields, so framing allocates nothing else.
 */
export class Framer {
  private partial: Uint8Array | null = null;
  /** Handle of the area region the packet being assembled is in (0: none, it is in `partial`). */
  private region = 0;
  private partialLen = 0;
  /** Size of the packet being assembled, 0 while its fixed header is still incomplete. */
  private partialTotal = 0;
  private partialBodyStart = 0;
  /** Results of readHeader. */
  private bodyStart = 0;
  private total = 0;

  /** Where packets spanning chunks are assembled at their final size; null: in buffers that grow. */
  area: PacketArea | null = null;

  constructor(public maxPacketSize: number) {}

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.partialLen;
  }

  /** Bytes allocated for the incomplete packet: its size in the area; else at most twice what arrived of it, and at most its size. */
  get allocated(): number {
    if (this.region !== 0) return this.partialTotal;
    return this.partial === null ? 0 : this.partial.length;
  }

  /**
   * Bytes the packet being assembled in the area still needs (0 when none is): the caller may push
   * that many bytes straight from the socket's chunk, sparing them a copy into a staging area.
   */
  get owed(): number {
    return this.region === 0 ? 0 : this.partialTotal - this.partialLen;
  }

  /** Gives back what an incomplete packet holds (the connection is gone). */
  discard(): void {
    if (this.region !== 0) this.area!.unref(this.region);
    this.region = 0;
    this.partial = null;
    this.partialLen = 0;
    this.partialTotal = 0;
  }

  /**
   * Frames `buf[start, end)`. `refresh`, when given, returns the current view of `buf`'s memory
   * after each packet (a wasm memory view is detached when the sink makes memory grow).
   */
  push(buf: Uint8Array, start: number, end: number, sink: PacketSink, refresh?: () => Uint8Array): void {
    let off = start;
    if (this.partial !== null || this.region !== 0) {
      if (this.partialTotal === 0) {
        off = this.completeHeader(buf, start, end);
        if (off < 0) return;
        // Allocating the packet's region may have grown memory.
        if (refresh) buf = refresh();
      }
      off = this.fill(buf, off, end);
      if (off < 0) return;
      const bodyStart = this.partialBodyStart;
      const total = this.partialTotal;
      const region = this.region;
      const packet = region === 0 ? this.partial! : this.area!.bytes();
      const at = region === 0 ? 0 : this.area!.ptr(region);
      this.partial = null;
      this.region = 0;
      this.partialLen = 0;
      this.partialTotal = 0;
      let keepGoing: boolean;
      try {
        keepGoing = sink.onPacket(packet[at]!, packet, at + bodyStart, at + total);
      } finally {
        // The sink copies what it keeps of a packet.
        if (region !== 0) this.area!.unref(region);
      }
      if (!keepGoing) return;
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
        this.begin(total, this.bodyStart - off);
        this.append(refresh ? refresh() : buf, off, end);
        return;
      }
      const keepGoing = sink.onPacket(buf[off]!, buf, this.bodyStart, off + total);
      off += total;
      if (!keepGoing) return;
      if (refresh) buf = refresh();
    }
  }

  /** Completes the fixed header of the packet being assembled: where the unused bytes start, or -1. */
  private completeHeader(buf: Uint8Array, start: number, end: number): number {
    let off = start;
    const head = this.partial!;
    while (off < end && this.partialLen < 5) {
      head[this.partialLen++] = buf[off++]!;
      if (this.readHeader(head, 0, this.partialLen)) {
        const have = this.partialLen;
        this.begin(this.total, this.bodyStart);
        this.append(head, 0, have);
        return off;
      }
    }
    return -1;
  }

  /** Feeds bytes into the packet being assembled; returns where the unused bytes start, or -1 while it is incomplete. */
  private fill(buf: Uint8Array, start: number, end: number): number {
    const take = Math.min(this.partialTotal - this.partialLen, end - start);
    this.append(buf, start, start + take);
    return this.partialLen === this.partialTotal ? start + take : -1;
  }

  /** A packet of `total` bytes (body at `bodyStart`) starts being assembled: in the area when it has room. */
  private begin(total: number, bodyStart: number): void {
    this.partialTotal = total;
    this.partialBodyStart = bodyStart;
    this.partial = null;
    this.partialLen = 0;
    this.region = this.area === null ? 0 : this.area.alloc(total);
  }

  /** Appends bytes of the packet being assembled: into its area region, or into a buffer grown as needed (never past its size). */
  private append(buf: Uint8Array, start: number, end: number): void {
    const needed = this.partialLen + (end - start);
    if (this.region !== 0) {
      const area = this.area!;
      area.bytes().set(buf.subarray(start, end), area.ptr(this.region) + this.partialLen);
      this.partialLen = needed;
      return;
    }
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

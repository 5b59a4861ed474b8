/**
 * Splits the bytes a broker sends into MQTT packets, exactly as they came (fixed header, Remaining
 * Length, body): the raw 3.1.1 and 5.0 peers and the WebSocket peer of the conformance suites.
 */

/** One packet exactly as it came over the wire. */
export interface Frame {
  header: number;
  type: number;
  flags: number;
  /** The whole packet. */
  raw: Buffer;
  /** What follows the fixed header. */
  body: Buffer;
  /** The Remaining Length used no more bytes than its value needs [MQTT-1.5.5-1]. */
  minimalLength: boolean;
}

/** Keeps what has arrived of a packet not yet complete. */
export class FrameSplitter {
  private pending = Buffer.alloc(0);

  /** The packets `data` completes, in order. */
  push(data: Buffer): Frame[] {
    this.pending = Buffer.concat([this.pending, data]);
    const frames: Frame[] = [];
    for (;;) {
      const p = this.pending;
      if (p.length < 2) return frames;
      let length = 0;
      let multiplier = 1;
      let i = 1;
      let complete = false;
      for (; i <= 4 && i < p.length; i++) {
        const b = p[i]!;
        length += (b & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) return frames;
      const total = 1 + i + length;
      if (p.length < total) return frames;
      const raw = p.subarray(0, total);
      frames.push({ header: p[0]!, type: p[0]! >> 4, flags: p[0]! & 0x0f, raw, body: raw.subarray(1 + i), minimalLength: i === 1 || p[i] !== 0 });
      this.pending = p.subarray(total);
    }
  }
}

/**
 * MQTT packets as bytes, for tests that send exactly what they mean (well-formed or not) and read
 * exactly what the broker sent: packet type numbers, field encoders, and a splitter of the byte
 * stream into packets as they came (fixed header, Remaining Length, body).
 */

/** Packet type numbers (§2.2.1). */
export const T = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

const TYPE_NAMES = ['reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];
export const typeName = (t: number): string => TYPE_NAMES[t] ?? String(t);

/** Bytes given as bytes, or as a list of byte values. */
export type Part = Uint8Array | readonly number[];

const enc = new TextEncoder();

/** A field as text (UTF-8) or as raw bytes, which may be ill-formed on purpose. */
export function bytes(s: string | Part): Buffer {
  return typeof s === 'string' ? Buffer.from(enc.encode(s)) : Buffer.from(s as Uint8Array);
}

/** A Variable Byte Integer (§1.5.5), minimally encoded. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

export const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
export const u32 = (n: number): Buffer => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

/** A length-prefixed field (§1.5.3): two-byte big-endian length, then the bytes as given. */
export function str(s: string | Part): Buffer {
  const b = bytes(s);
  return Buffer.concat([u16(b.length), b]);
}

/** The parts, one after the other. */
export const cat = (...parts: Part[]): Buffer => Buffer.concat(parts.map((p) => bytes(p)));

/** A whole packet: fixed header byte, minimal Remaining Length, then the body parts. */
export function packet(header: number, ...body: Part[]): Buffer {
  const b = cat(...body);
  return Buffer.concat([Buffer.from([header]), varint(b.length), b]);
}

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

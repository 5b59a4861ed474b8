import { malformed } from './errors.js';

// ignoreBOM keeps a leading U+FEFF: it must not be stripped [MQTT-1.5.4-3].
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sequential reader over one packet's bytes; every read checks bounds and throws a Malformed Packet error. */
export class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) throw malformed(`packet ends inside ${what}`);
  }

  u8(what = 'a byte'): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u16(what = 'a two byte integer'): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what = 'a four byte integer'): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** Variable Byte Integer (§1.5.5): at most four bytes. */
  varint(what = 'a variable byte integer'): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw malformed(`${what} is not minimally encoded [MQTT-1.5.5-1]`);
        return value;
      }
      multiplier *= 128;
    }
    throw malformed(`${what} is longer than four bytes`);
  }

  /** Binary Data (§1.5.6): two-byte length then bytes; returns a view, not a copy. */
  binary(what = 'binary data'): Uint8Array {
    const len = this.u16(what);
    this.need(len, what);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  /** UTF-8 Encoded String (§1.5.4): ill-formed UTF-8 and U+0000 are malformed [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
  string(what = 'a string'): string {
    return decodeUtf8(this.binary(what), what);
  }

  rest(): Uint8Array {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }
}

export function decodeUtf8(bytes: Uint8Array, what: string): string {
  let s: string;
  try {
    s = utf8.decode(bytes);
  } catch {
    throw malformed(`${what} is not well-formed UTF-8`);
  }
  if (s.includes('\u0000')) throw malformed(`${what} contains U+0000`);
  return s;
}

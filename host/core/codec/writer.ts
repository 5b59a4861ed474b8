const utf8 = new TextEncoder();

/** Bytes needed for a Variable Byte Integer (§1.5.5). */
export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Writes a Variable Byte Integer at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (n > 0);
  return pos;
}

/** A whole packet: the fixed header byte, the Remaining Length, the body. */
export function wrapPacket(header: number, body: Uint8Array): Uint8Array {
  return new Writer(body.length + 5).u8(header).varint(body.length).bytes(body).result();
}

/** Growable byte builder for packets that are not on the hot path. */
export class Writer {
  buf: Uint8Array;
  pos = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf[this.pos++] = v >>> 24;
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  varint(v: number): this {
    this.ensure(4);
    this.pos = writeVarint(this.buf, this.pos, v);
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  binary(v: Uint8Array): this {
    return this.u16(v.length).bytes(v);
  }

  string(s: string): this {
    return this.binary(utf8.encode(s));
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export const encodeUtf8 = (s: string): Uint8Array => utf8.encode(s);

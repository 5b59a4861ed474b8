import type { StoredDelivery, StoredMessage, StoredSession } from '../core/model/store.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A growable byte buffer the record encoders write into directly (no buffer per record). */
export class ByteWriter {
  bytes: Uint8Array;
  view: DataView;
  pos = 0;

  /** Writes into `into` (a view: the free part of a larger buffer) or a new buffer of that many bytes; past its end, into a grown buffer of its own. */
  constructor(into: number | Uint8Array) {
    this.bytes = typeof into === 'number' ? new Uint8Array(into) : into;
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  reserve(n: number): void {
    if (this.pos + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.pos + n));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.bytes[this.pos++] = v;
  }

  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  raw(v: Uint8Array): void {
    this.reserve(v.length);
    this.bytes.set(v, this.pos);
    this.pos += v.length;
  }

  /** A u32 placeholder to be filled by `endLength` with the number of bytes written after it. */
  beginLength(): number {
    this.u32(0);
    return this.pos;
  }

  endLength(start: number): void {
    this.view.setUint32(start - 4, this.pos - start);
  }

  /** The string as UTF-8 after its byte length (u32). */
  string32(s: string): void {
    this.reserve(4 + 3 * s.length);
    const written = this.utf8At(s, this.pos + 4);
    this.view.setUint32(this.pos, written);
    this.pos += 4 + written;
  }

  /** The string as UTF-8 after its byte length (u16; topics are at most 65,535 bytes). */
  string16(s: string): void {
    this.reserve(2 + 3 * s.length);
    const written = this.utf8At(s, this.pos + 2);
    this.view.setUint16(this.pos, written);
    this.pos += 2 + written;
  }

  /** Client ids, keys and topics are mostly ASCII: copied by hand, they cost no TextEncoder call. */
  private utf8At(s: string, at: number): number {
    const bytes = this.bytes;
    let p = at;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      bytes[p++] = c;
    }
    if (i < s.length) p += utf8.encodeInto(s.slice(i), bytes.subarray(p)).written;
    return p - at;
  }
}

/** Reads what ByteWriter wrote. */
export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  u8(): number {
    return this.bytes[this.pos++]!;
  }

  u16(): number {
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  /** The next `n` bytes, as a view (no copy). */
  take(n: number): Uint8Array {
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  string32(): string {
    return utf8Decoder.decode(this.take(this.u32()));
  }

  string16(): string {
    return utf8Decoder.decode(this.take(this.u16()));
  }
}

/** [u32 header length][header JSON][payload]: the payload stays binary. */
export function encodeMessage(w: ByteWriter, m: StoredMessage): void {
  const header = utf8.encode(JSON.stringify({ t: m.topic, q: m.qos, r: m.retain, e: m.expiresAt, f: m.forward ? toBase64(m.forward) : null }));
  w.u32(header.length);
  w.raw(header);
  w.raw(m.payload);
}

export function decodeMessage(value: Uint8Array): StoredMessage {
  const length = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
  const h = JSON.parse(utf8Decoder.decode(value.subarray(4, 4 + length))) as { t: string; q: 0 | 1 | 2; r: boolean; e: number; f: string | null };
  return { topic: h.t, qos: h.q, retain: h.r, expiresAt: h.e, forward: h.f === null ? null : fromBase64(h.f), payload: value.slice(4 + length) };
}

const BINARY_DELIVERY = 0x02;

/**
 * A delivery record's value. Binary since schema 2 — client id and sequence are in the key:
 *   [0x02][flags: qos | retain << 2 | released << 3 | inline body << 4][packet id u16]
 *   [message id length u8][message id][subscription id count u16][u32 each]
 *   and, with an inline body: [qos | retain << 2 | has forward << 3][expiresAt f64]
 *   [topic length u16][topic][forward length u32][forward]?[payload…].
 * Schema 1 values are JSON and always start with '{'.
 */
export function encodeDelivery(w: ByteWriter, d: StoredDelivery): void {
  const m = d.message;
  const ids = d.subscriptionIds;
  const idCount = ids ? ids.length : 0;
  const messageId = d.messageId;
  // Reserved once: the fields below are written without a bounds check each.
  w.reserve(7 + messageId.length + 4 * idCount + (m ? 15 + 3 * m.topic.length + (m.forward ? 4 + m.forward.length : 0) + m.payload.length : 0));
  const { bytes, view } = w;
  let p = w.pos;
  bytes[p] = BINARY_DELIVERY;
  bytes[p + 1] = d.qos | (d.retain ? 4 : 0) | (d.released ? 8 : 0) | (m ? 16 : 0);
  view.setUint16(p + 2, d.packetId);
  bytes[p + 4] = messageId.length;
  p += 5;
  for (let i = 0; i < messageId.length; i++) bytes[p++] = messageId.charCodeAt(i);
  view.setUint16(p, idCount);
  p += 2;
  for (let i = 0; i < idCount; i++, p += 4) view.setUint32(p, ids![i]!);
  if (m) {
    bytes[p++] = m.qos | (m.retain ? 4 : 0) | (m.forward ? 8 : 0);
    view.setFloat64(p, m.expiresAt);
    w.pos = p + 8;
    w.string16(m.topic);
    p = w.pos;
    if (m.forward) {
      view.setUint32(p, m.forward.length);
      bytes.set(m.forward, p + 4);
      p += 4 + m.forward.length;
    }
    bytes.set(m.payload, p);
    p += m.payload.length;
  }
  w.pos = p;
}

export function decodeDelivery(value: Uint8Array, clientId: string, seq: number): StoredDelivery {
  if (value[0] !== BINARY_DELIVERY) return JSON.parse(utf8Decoder.decode(value)) as StoredDelivery;
  const r = new ByteReader(value);
  r.pos = 1;
  const flags = r.u8();
  const packetId = r.u16();
  const messageId = String.fromCharCode(...r.take(r.u8()));
  const count = r.u16();
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(r.u32());
  const d: StoredDelivery = {
    clientId,
    seq,
    messageId,
    qos: (flags & 3) as 0 | 1 | 2,
    retain: (flags & 4) !== 0,
    subscriptionIds: count > 0 ? ids : null,
    packetId,
    released: (flags & 8) !== 0,
  };
  if (flags & 16) {
    const mflags = r.u8();
    const expiresAt = r.f64();
    const topic = r.string16();
    const forward = mflags & 8 ? r.take(r.u32()).slice() : null;
    d.message = { topic, qos: (mflags & 3) as 0 | 1 | 2, retain: (mflags & 4) !== 0, forward, expiresAt, payload: value.slice(r.pos) };
  }
  return d;
}

export function encodeSession(w: ByteWriter, s: StoredSession): void {
  w.raw(utf8.encode(JSON.stringify(s, (_k, v: unknown) => (v instanceof Uint8Array ? { $b64: toBase64(v) } : v))));
}

export function decodeSession(value: Uint8Array): StoredSession {
  return JSON.parse(utf8Decoder.decode(value), (_k, v: unknown) =>
    v !== null && typeof v === 'object' && '$b64' in v ? fromBase64((v as { $b64: string }).$b64) : v,
  ) as StoredSession;
}

const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

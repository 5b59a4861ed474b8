/**
 * The link's binary frame format. One WebSocket message carries one frame: a type byte, then its
 * fields. Numbers are big-endian; strings and byte strings carry a u32 length. The handshake frames
 * put the protocol version first, so that a node meeting a newer or older format can say so.
 */

/** The link protocol this build speaks; a link between nodes of different versions is refused. */
export const LINK_PROTOCOL_VERSION = 5;

export const enum FrameType {
  /** Acceptor → dialer: version, then {cluster, node, nonce, incarnation}. */
  Hello = 1,
  /** Dialer → acceptor: version, then {cluster, node, nonce, incarnation, mac}. */
  Proof = 2,
  /** Acceptor → dialer: {mac}: the link is up. */
  Welcome = 3,
  /** Either side: why the link is refused (a reason text), then the socket closes. */
  Refuse = 4,
  /** Route announcements: a snapshot or numbered deltas of the sender's distinct filters. */
  Routes = 10,
  /** Forwarded PUBLISHes, batched per event-loop turn. */
  Forward = 20,
  /** Forwards up to a sequence number are durable on the receiver. */
  ForwardAck = 21,
  /** QoS 2 packet identifiers their publishers released (PUBREL): {client id, packet id} pairs, batched per turn. */
  Released = 22,
  /** Retained messages with their clocks: one change, or a snapshot. */
  Retained = 30,
  /** A session's hand-over: request, reply. */
  Takeover = 40,
  TakeoverReply = 41,
  /** A clean-session client id connected elsewhere: close it here. */
  Kick = 42,
  /** New owner of a moved session → every peer, right after its routes: the move's token, the old owner, the client id, its non-shared filters. */
  MoveBarrier = 43,
  /** A node's cut of a move: the token, the last forward sequence number routed before the barrier. */
  MovePass = 44,
  /**
   * New owner → old owner, second phase of a hand-over: the request's id, then 1 when the session is
   * durable at the new owner (the old owner drops its copy now), 0 when it was not taken (a reply
   * that came too late, or could not be installed: the old owner keeps the session).
   */
  TakeoverSettled = 45,
  /** Session replication (docs/CLUSTERING.md): an owner's group commit, the records its buddy keeps. */
  Replicate = 50,
  /** The buddy made replication frames up to a sequence number durable. */
  ReplicateAck = 51,
  /** A node starting a session afresh asks for a replica of it whose owner is gone; the reply carries it or nothing. */
  ReplicaRequest = 52,
  ReplicaReply = 53,
}

/** A frame that does not parse: the link is closed (the peer runs broken or hostile code). */
export class LinkProtocolError extends Error {}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Builds one frame. */
export class FrameWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(type: FrameType, capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.buf[this.pos++] = type;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  get length(): number {
    return this.pos;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A non-negative integer up to 2^53 (sequence numbers, clocks). */
  uint(v: number): this {
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.u32(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  string(v: string): this {
    // Written in place (at most 3 bytes per UTF-16 unit, lone surrogates as U+FFFD like TextEncoder):
    // an encoded copy per string costs more than the rest of a replication frame.
    this.ensure(4 + v.length * 3);
    const n = this.buf.write(v, this.pos + 4, 'utf8');
    this.buf.writeUInt32BE(n, this.pos);
    this.pos += 4 + n;
    return this;
  }

  json(v: unknown): this {
    return this.string(JSON.stringify(v));
  }

  /** A Variable Byte Integer (7 bits a byte, least significant first). */
  varint(v: number): this {
    this.ensure(8);
    this.pos = putVarint(this.buf, this.pos, v);
    return this;
  }

  /** Moves the end back to `pos` (after reserving more than was written). */
  rewind(pos: number): void {
    this.pos = pos;
  }

  /** Reserves `n` bytes for the caller to fill at the returned offset of `target()`. */
  reserve(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  target(): Buffer {
    return this.buf;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A frame of entries counted as they are written: the u32 count comes first and is filled in by finish(). */
export class CountedFrame {
  readonly writer: FrameWriter;
  count = 0;
  private readonly countAt: number;

  constructor(type: FrameType, capacity: number) {
    this.writer = new FrameWriter(type, capacity);
    this.countAt = this.writer.reserve(4);
  }

  finish(): Buffer {
    this.writer.target().writeUInt32BE(this.count, this.countAt);
    return this.writer.finish();
  }
}

/** Reads one frame's fields; any overrun is a LinkProtocolError. */
export class FrameReader {
  private pos = 1;

  constructor(readonly buf: Buffer) {
    if (buf.length === 0) throw new LinkProtocolError('empty frame');
  }

  get type(): number {
    return this.buf[0]!;
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) throw new LinkProtocolError(`frame type ${this.type} ends early`);
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.buf[this.need(1)]!;
  }

  u16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }

  u32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }

  uint(): number {
    const at = this.need(8);
    return this.buf.readUInt32BE(at) * 0x1_0000_0000 + this.buf.readUInt32BE(at + 4);
  }

  /** Offset of the next field. */
  get position(): number {
    return this.pos;
  }

  /** Skips `n` bytes; returns where they start. */
  skip(n: number): number {
    return this.need(n);
  }

  varint(): number {
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.buf[this.need(1)]!;
      value += (b & 0x7f) * mult;
      if (b < 0x80) return value;
      mult *= 128;
    }
    throw new LinkProtocolError(`frame type ${this.type} has an overlong number`);
  }

  /** A view into the frame (copy it to keep it past the frame's handling). */
  bytes(): Buffer {
    const n = this.u32();
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  string(): string {
    try {
      return utf8Decoder.decode(this.bytes());
    } catch {
      throw new LinkProtocolError(`frame type ${this.type} has a string that is not UTF-8`);
    }
  }

  json<T>(): T {
    try {
      return JSON.parse(this.string()) as T;
    } catch (error) {
      if (error instanceof LinkProtocolError) throw error;
      throw new LinkProtocolError(`frame type ${this.type} has malformed JSON`);
    }
  }
}

/** Writes a Variable Byte Integer at `pos` (up to 2^53); returns the position after it. */
export function putVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

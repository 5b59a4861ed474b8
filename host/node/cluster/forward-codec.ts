import { Message } from '../../core/model/message.js';
import type { QoS } from '../../core/codec/packets.js';
import { MessageBlock } from '../../core/wasm/abi.js';
import type { Core } from '../../core/wasm/core.js';
import { type FrameReader, type FrameWriter, LinkProtocolError, putVarint } from './frame.js';
import type { Stamp } from './hlc.js';
import type { Qos2Origin } from '../../core/model/cluster-hooks.js';

/** What a forward asks of the receiving node. */
export interface ForwardRoute {
  /** Deliver to the node's non-shared subscribers. */
  plain: boolean;
  /** Share groups the sending node picked this node for: one local member of each gets it. */
  groups: readonly string[];
  /** A retained message (or deletion) to replicate, stamped with its hybrid clock. */
  stamp: Stamp | null;
  /** A client's QoS 2 message: who published it under which identifier (qos2-receipts.ts). */
  origin?: Qos2Origin | null;
}

export const NO_GROUPS: readonly string[] = Object.freeze([]);

/**
 * In a forward's group list, instead of a share group: the one session an old owner relays the
 * message to while that session moves (session-moves.ts). A share group's name cannot contain `/`.
 */
export const relayTarget = (clientId: string): string => '/' + clientId;

const F_QOS = 3;
const F_RETAIN = 4;
const F_PLAIN = 8;
const F_STAMPED = 16;
const F_EXPIRES = 32;
const F_FORWARDED_PROPERTIES = 64;
const F_GROUPS = 128;
const F_ORIGIN = 256;
const F_REPEAT = 512;
/** The block length takes at most this. */
const LENGTH_BYTES = 8;

/** A Buffer over wasm memory, made again after the memory grows (core.bytes() is then a new view). */
let memory: Buffer | null = null;
let memoryView: Uint8Array | null = null;
function memoryOf(core: Core): Buffer {
  const view = core.bytes();
  if (view !== memoryView) {
    memoryView = view;
    memory = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  }
  return memory!;
}

/**
 * Writes one message entry: the distance of its sequence number from the previous entry's, what to
 * do with it (flags), the optional parts the flags announce, then the message as its arena block
 * holds it ([topic length][topic][payload]) and its forwarded 5.0 properties. The common entry — no
 * group, no stamp, no expiry — is a few header bytes and one copy out of wasm memory.
 */
export function writeEntry(w: FrameWriter, seqDelta: number, message: Message, route: ForwardRoute, now: number): void {
  const core = message.core;
  const groups = route.groups;
  let flags = message.qos | (message.retain ? F_RETAIN : 0) | (route.plain ? F_PLAIN : 0);
  if (route.stamp) flags |= F_STAMPED;
  if (message.expiresAt !== 0) flags |= F_EXPIRES;
  if (message.forwardHandle !== 0) flags |= F_FORWARDED_PROPERTIES;
  if (groups.length > 0) flags |= F_GROUPS;
  const origin = route.origin;
  if (origin) flags |= F_ORIGIN | (origin.repeat ? F_REPEAT : 0);
  const start = w.reserve(16);
  const head = w.target();
  let at = putVarint(head, start, seqDelta);
  at = putVarint(head, at, flags);
  w.rewind(at);
  if (route.stamp) w.uint(route.stamp.wall).u32(route.stamp.logical).string(route.stamp.node);
  if (message.expiresAt !== 0) w.uint(Math.max(0, Math.round(message.expiresAt - now)));
  if (groups.length > 0) {
    w.varint(groups.length);
    for (const group of groups) w.string(group);
  }
  if (origin) w.string(origin.clientId).u16(origin.packetId);
  const mem = memoryOf(core);
  const length = message.length;
  at = w.reserve(LENGTH_BYTES + length);
  const buf = w.target();
  at = putVarint(buf, at, length);
  mem.copy(buf, at, message.ptr(), message.ptr() + length);
  w.rewind(at + length);
  if (message.forwardHandle !== 0) {
    const f = core.ptr(message.forwardHandle);
    const n = message.forwardLength;
    at = w.reserve(8 + n);
    const out = w.target();
    at = putVarint(out, at, n);
    mem.copy(out, at, f, f + n);
    w.rewind(at + n);
  }
}

/**
 * Reads entries one after another into its own fields (no object per entry): next() parses one,
 * message() copies its block into a new arena block.
 */
export class EntryReader {
  seqDelta = 0;
  qos: QoS = 0;
  retain = false;
  plain = false;
  groups: readonly string[] = NO_GROUPS;
  /** The session a relayed message is for (see relayTarget), else null. */
  session: string | null = null;
  stamp: Stamp | null = null;
  /** ms of message expiry left, -1 = none. */
  expiresIn = -1;
  /** A client's QoS 2 message: its publisher's client id (else null), packet identifier, and whether it may be a repeat. */
  originClient: string | null = null;
  originPacketId = 0;
  originRepeat = false;
  blockStart = 0;
  blockLength = 0;
  topicLength = 0;
  forwardStart = 0;
  forwardLength = 0;

  constructor(readonly reader: FrameReader) {}

  next(): void {
    const r = this.reader;
    this.seqDelta = r.varint();
    const flags = r.varint();
    if ((flags & F_QOS) === 3) throw new LinkProtocolError('forward with QoS 3');
    this.qos = (flags & F_QOS) as QoS;
    this.retain = (flags & F_RETAIN) !== 0;
    this.plain = (flags & F_PLAIN) !== 0;
    this.stamp = flags & F_STAMPED ? { wall: r.uint(), logical: r.u32(), node: r.string() } : null;
    this.expiresIn = flags & F_EXPIRES ? r.uint() : -1;
    this.session = null;
    if (flags & F_GROUPS) {
      const groups: string[] = [];
      for (let n = r.varint(); n > 0; n--) {
        const name = r.string();
        if (name.charCodeAt(0) === 0x2f) this.session = name.slice(1);
        else groups.push(name);
      }
      this.groups = groups.length > 0 ? groups : NO_GROUPS;
    } else {
      this.groups = NO_GROUPS;
    }
    this.originClient = flags & F_ORIGIN ? r.string() : null;
    this.originPacketId = flags & F_ORIGIN ? r.u16() : 0;
    this.originRepeat = (flags & F_REPEAT) !== 0;
    this.blockLength = r.varint();
    this.blockStart = r.skip(this.blockLength);
    const buf = r.buf;
    if (this.blockLength < MessageBlock.Topic) throw new LinkProtocolError('forward with a malformed message block');
    this.topicLength = buf.readUInt16BE(this.blockStart + MessageBlock.TopicLength);
    if (MessageBlock.Topic + this.topicLength > this.blockLength) throw new LinkProtocolError('forward with a malformed message block');
    if (flags & F_FORWARDED_PROPERTIES) {
      this.forwardLength = r.varint();
      this.forwardStart = r.skip(this.forwardLength);
    } else {
      this.forwardLength = 0;
    }
  }

  /** The entry's topic bytes (a view into the frame). */
  topicBytes(): Buffer {
    return this.reader.buf.subarray(this.blockStart + MessageBlock.Topic, this.blockStart + MessageBlock.Topic + this.topicLength);
  }

  topic(): string {
    return this.topicBytes().toString('utf8');
  }

  /** The entry's message in this node's arena (refcount 1, the caller's); null when the arena is full. */
  message(core: Core): Message | null {
    const buf = this.reader.buf;
    let forwardHandle = 0;
    if (this.forwardLength > 0) {
      forwardHandle = core.alloc(this.forwardLength);
      if (forwardHandle === 0) return null;
      buf.copy(memoryOf(core), core.ptr(forwardHandle), this.forwardStart, this.forwardStart + this.forwardLength);
    }
    const handle = core.alloc(this.blockLength);
    if (handle === 0) {
      if (forwardHandle !== 0) core.unref(forwardHandle);
      return null;
    }
    buf.copy(memoryOf(core), core.ptr(handle), this.blockStart, this.blockStart + this.blockLength);
    const expiresAt = this.expiresIn < 0 ? 0 : performance.now() + this.expiresIn;
    return Message.of(core, handle, this.topicLength, this.blockLength, this.qos, this.retain, forwardHandle, this.forwardLength, expiresAt);
  }
}

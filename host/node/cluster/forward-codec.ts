import { Message } from '../../core/message.js';
import type { QoS } from '../../core/codec/packets.js';
import type { Core } from '../../core/wasm.js';
import { type FrameReader, type FrameWriter, LinkProtocolError } from './frame.js';
import type { Stamp } from './hlc.js';

/** What a forward asks of the receiving node. */
export interface ForwardRoute {
  /** Deliver to the node's non-shared subscribers. */
  plain: boolean;
  /** Share groups the sending node picked this node for: one local member of each gets it. */
  groups: string[];
  /** A retained message (or deletion) to replicate, stamped with its hybrid clock. */
  stamp: Stamp | null;
}

const F_RETAIN = 4;
const F_PLAIN = 8;
const F_STAMPED = 16;
const F_EXPIRES = 32;

/**
 * Writes one message entry: sequence number, what to do with it, and the message as its arena
 * block holds it ([topic length][topic][payload]) plus its forwarded 5.0 properties.
 */
export function writeEntry(w: FrameWriter, seq: number, message: Message, route: ForwardRoute, now: number): void {
  const core = message.core;
  let flags = message.qos | (message.retain ? F_RETAIN : 0) | (route.plain ? F_PLAIN : 0);
  if (route.stamp) flags |= F_STAMPED;
  if (message.expiresAt !== 0) flags |= F_EXPIRES;
  w.uint(seq).u8(flags);
  if (route.stamp) w.uint(route.stamp.wall).u32(route.stamp.logical).string(route.stamp.node);
  if (message.expiresAt !== 0) w.uint(Math.max(0, Math.round(message.expiresAt - now)));
  w.u16(route.groups.length);
  for (const group of route.groups) w.string(group);
  const ptr = message.ptr();
  w.bytes(core.bytes().subarray(ptr, ptr + message.length));
  if (message.forwardHandle === 0) w.u32(0);
  else {
    const f = core.ptr(message.forwardHandle);
    w.bytes(core.bytes().subarray(f, f + message.forwardLength));
  }
}

export interface ReadEntry {
  seq: number;
  route: ForwardRoute;
  qos: QoS;
  retain: boolean;
  /** ms of message expiry left, -1 = none. */
  expiresIn: number;
  block: Buffer;
  forward: Buffer;
}

export function readEntry(r: FrameReader): ReadEntry {
  const seq = r.uint();
  const flags = r.u8();
  if ((flags & 3) === 3) throw new LinkProtocolError('forward with QoS 3');
  const qos = (flags & 3) as QoS;
  const stamp = flags & F_STAMPED ? { wall: r.uint(), logical: r.u32(), node: r.string() } : null;
  const expiresIn = flags & F_EXPIRES ? r.uint() : -1;
  const groups: string[] = [];
  for (let n = r.u16(); n > 0; n--) groups.push(r.string());
  const block = r.bytes();
  const forward = r.bytes();
  if (block.length < 2 || 2 + block.readUInt16BE(0) > block.length) throw new LinkProtocolError('forward with a malformed message block');
  return { seq, route: { plain: (flags & F_PLAIN) !== 0, groups, stamp }, qos, retain: (flags & F_RETAIN) !== 0, expiresIn, block, forward };
}

/** The entry's message in this node's arena (refcount 1, the caller's); null when the arena is full. */
export function entryMessage(core: Core, entry: ReadEntry): Message | null {
  const forwardHandle = entry.forward.length > 0 ? Message.storeForward(core, entry.forward) : 0;
  if (entry.forward.length > 0 && forwardHandle === 0) return null;
  const handle = core.alloc(entry.block.length);
  if (handle === 0) {
    if (forwardHandle !== 0) core.release(forwardHandle);
    return null;
  }
  core.bytes().set(entry.block, core.ptr(handle));
  const expiresAt = entry.expiresIn < 0 ? 0 : performance.now() + entry.expiresIn;
  return Message.of(core, handle, entry.block.readUInt16BE(0), entry.block.length, entry.qos, entry.retain, forwardHandle, entry.forward.length, expiresAt);
}

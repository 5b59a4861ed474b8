import { malformed, protocolError, ProtocolError } from './errors.js';
import { PacketType, Prop, Reason, type ProtocolVersion } from './constants.js';
import type { QoS } from './packets.js';
import { readProperties, type Properties } from './properties.js';
import { Reader } from './reader.js';
import { varintSize, writeVarint } from './writer.js';

/** Where the parts of an incoming PUBLISH are (absolute offsets into the buffer it arrived in). */
export interface PublishFrame {
  qos: QoS;
  dup: boolean;
  retain: boolean;
  topicStart: number;
  topicLength: number;
  packetId: number;
  payloadStart: number;
  payloadEnd: number;
  props: Properties;
  forward: Uint8Array | null;
}

const NO_PROPS: Properties = Object.freeze({});
/** Reused for every PUBLISH: parsing allocates nothing unless the packet has properties. */
const frame: PublishFrame = {
  qos: 0,
  dup: false,
  retain: false,
  topicStart: 0,
  topicLength: 0,
  packetId: 0,
  payloadStart: 0,
  payloadEnd: 0,
  props: NO_PROPS,
  forward: null,
};

/**
 * Reads the fixed-header flags, topic length, packet identifier and 5.0 properties of a PUBLISH
 * whose body is `buf[start, end)` (§3.3). The returned frame is shared: valid until the next call.
 */
export function parsePublish(header: number, buf: Uint8Array, start: number, end: number, version: ProtocolVersion): PublishFrame {
  const qos = (header >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (header & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]');
  if (end - start < 2) throw malformed('PUBLISH ends inside the topic length');
  const topicLength = (buf[start]! << 8) | buf[start + 1]!;
  let pos = start + 2 + topicLength;
  let packetId = 0;
  if (qos > 0) {
    if (pos + 2 > end) throw malformed('PUBLISH ends inside the packet identifier');
    packetId = (buf[pos]! << 8) | buf[pos + 1]!;
    if (packetId === 0) throw malformed('packet identifier 0 is not allowed [MQTT-2.3.1-1]');
    pos += 2;
  } else if (pos > end) {
    throw malformed('PUBLISH ends inside the topic');
  }
  let props = NO_PROPS;
  let forward: Uint8Array | null = null;
  if (version === 5) {
    if (pos < end && buf[pos] === 0) {
      pos += 1;
    } else {
      const r = new Reader(buf, pos, end);
      const parsed = readProperties(r, PacketType.PUBLISH);
      props = parsed.props;
      forward = parsed.forward;
      pos = r.pos;
      if (props.subscriptionIdentifiers) {
        throw protocolError('a client must not send a Subscription Identifier in PUBLISH [MQTT-3.3.4-6]');
      }
      if (props.topicAlias === 0) throw new ProtocolError(Reason.TopicAliasInvalid, 'topic alias 0 is not allowed [MQTT-3.3.2-8]');
    }
  }
  frame.qos = qos as QoS;
  frame.dup = dup;
  frame.retain = (header & 0x01) !== 0;
  frame.topicStart = start + 2;
  frame.topicLength = topicLength;
  frame.packetId = packetId;
  frame.payloadStart = pos;
  frame.payloadEnd = end;
  frame.props = props;
  frame.forward = forward;
  return frame;
}

// ---- out ---------------------------------------------------------------------------------

/**
 * Where an outgoing PUBLISH is written: one array of the packet's size (PacketBuffer: host/client,
 * the tests), or a connection's outbox in wasm memory (the broker), which may send a large part
 * straight from the message's own arena block instead of copying it.
 */
export interface PublishTarget<S> {
  /** Room for `n` bytes, written at the returned offset of `bytes` (read `bytes` after this call). */
  reserve(n: number): number;
  readonly bytes: Uint8Array;
  /** Appends `length` bytes of `source` from `offset`. */
  append(source: S, offset: number, length: number): void;
}

/**
 * One PUBLISH going out: its flags and where each of its parts is (`S`: a byte array, or for the
 * broker an arena handle with absolute offsets into wasm memory). Fill one and reuse it.
 */
export interface OutgoingPublish<S> {
  version: ProtocolVersion;
  qos: QoS;
  dup: boolean;
  retain: boolean;
  /** Ignored for QoS 0. */
  packetId: number;
  /** Length 0: the empty topic name of a topic alias the receiver knows [MQTT-3.3.2-12]. */
  topic: S;
  topicAt: number;
  topicLength: number;
  /** 5.0: properties of this PUBLISH alone (encodeDeliveryProperties), or null. */
  properties: Uint8Array | null;
  /** 5.0: properties forwarded unchanged, already encoded, after the own ones (length 0: none). */
  forward: S | null;
  forwardAt: number;
  forwardLength: number;
  payload: S;
  payloadAt: number;
  payloadLength: number;
}

/** Remaining Length of the PUBLISH (§3.3.1.4). */
function remainingLength(p: OutgoingPublish<unknown>): number {
  let n = 2 + p.topicLength + (p.qos > 0 ? 2 : 0) + p.payloadLength;
  if (p.version === 5) {
    const props = (p.properties ? p.properties.length : 0) + p.forwardLength;
    n += varintSize(props) + props;
  }
  return n;
}

/** The whole packet's size in bytes, fixed header included (to hold it against a Maximum Packet Size). */
export function publishSize(p: OutgoingPublish<unknown>): number {
  const remaining = remainingLength(p);
  return 1 + varintSize(remaining) + remaining;
}

/** Writes the PUBLISH `p` into `target` (§3.3): the one encoder of the broker and of host/client. */
export function writePublish<S>(target: PublishTarget<S>, p: OutgoingPublish<S>): void {
  const remaining = remainingLength(p);
  let at = target.reserve(1 + varintSize(remaining) + 2);
  let buf = target.bytes;
  buf[at] = (PacketType.PUBLISH << 4) | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  at = writeVarint(buf, at + 1, remaining);
  buf[at] = p.topicLength >> 8;
  buf[at + 1] = p.topicLength & 0xff;
  if (p.topicLength > 0) target.append(p.topic, p.topicAt, p.topicLength);
  const own = p.version === 5 && p.properties ? p.properties.length : 0;
  const forward = p.version === 5 ? p.forwardLength : 0;
  const props = own + forward;
  const middle = (p.qos > 0 ? 2 : 0) + (p.version === 5 ? varintSize(props) + own : 0);
  if (middle > 0) {
    at = target.reserve(middle);
    buf = target.bytes;
    if (p.qos > 0) {
      buf[at++] = p.packetId >> 8;
      buf[at++] = p.packetId & 0xff;
    }
    if (p.version === 5) {
      at = writeVarint(buf, at, props);
      if (own > 0) buf.set(p.properties!, at);
    }
  }
  if (forward > 0) target.append(p.forward!, p.forwardAt, forward);
  if (p.payloadLength > 0) target.append(p.payload, p.payloadAt, p.payloadLength);
}

/** A PublishTarget over one array the size of the packet (publishSize). */
export class PacketBuffer implements PublishTarget<Uint8Array> {
  private pos = 0;

  constructor(readonly bytes: Uint8Array) {}

  reserve(n: number): number {
    const at = this.pos;
    this.pos += n;
    return at;
  }

  append(source: Uint8Array, offset: number, length: number): void {
    this.bytes.set(source.subarray(offset, offset + length), this.pos);
    this.pos += length;
  }
}

/** The PUBLISH `p` as one array. */
export function encodePublish(p: OutgoingPublish<Uint8Array>): Uint8Array {
  const out = new PacketBuffer(new Uint8Array(publishSize(p)));
  writePublish(out, p);
  return out.bytes;
}

/**
 * The 5.0 properties of one outgoing PUBLISH that differ per delivery: the Message Expiry Interval
 * left [MQTT-3.3.2-6], each matching Subscription Identifier [MQTT-3.3.4-3], and the Topic Alias
 * (0 = none). Null when there are none. The forwarded properties follow them.
 */
export function encodeDeliveryProperties(expirySeconds: number | undefined, subscriptionIds: number[] | null, topicAlias: number): Uint8Array | null {
  let size = expirySeconds === undefined ? 0 : 5;
  if (subscriptionIds) for (const id of subscriptionIds) size += 1 + varintSize(id);
  if (topicAlias !== 0) size += 3;
  if (size === 0) return null;
  const out = new Uint8Array(size);
  let pos = 0;
  if (expirySeconds !== undefined) {
    out[pos++] = Prop.MessageExpiryInterval;
    out[pos++] = expirySeconds >>> 24;
    out[pos++] = (expirySeconds >>> 16) & 0xff;
    out[pos++] = (expirySeconds >>> 8) & 0xff;
    out[pos++] = expirySeconds & 0xff;
  }
  if (subscriptionIds) {
    for (const id of subscriptionIds) {
      out[pos++] = Prop.SubscriptionIdentifier;
      pos = writeVarint(out, pos, id);
    }
  }
  if (topicAlias !== 0) {
    out[pos++] = Prop.TopicAlias;
    out[pos++] = topicAlias >> 8;
    out[pos++] = topicAlias & 0xff;
  }
  return out;
}

import { malformed, protocolError, ProtocolError } from '../errors.js';
import { Reason, PacketType, type ProtocolVersion } from './constants.js';
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

/** Writes a PUBLISH fixed header at `at`; returns the bytes written. */
export function writePublishHeader(
  buf: Uint8Array,
  at: number,
  qos: QoS,
  dup: boolean,
  retain: boolean,
  remainingLength: number,
): number {
  buf[at] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  return writeVarint(buf, at + 1, remainingLength) - at;
}

export const publishHeaderSize = (remainingLength: number): number => 1 + varintSize(remainingLength);

import { malformed, protocolError, ProtocolError } from '../errors.js';
import { Reason, PacketType, type ProtocolVersion } from './constants.js';
import type { QoS } from './packets.js';
import { readProperties, type Properties } from './properties.js';
import { Reader } from './reader.js';
import { varintSize, writeVarint } from './writer.js';

/** Where the parts of an incoming PUBLISH body are; the bytes stay in the receive buffer. */
export interface PublishFrame {
  qos: QoS;
  dup: boolean;
  retain: boolean;
  topicStart: number;
  topicLength: number;
  packetId: number;
  payloadStart: number;
  props: Properties;
  forward: Uint8Array | null;
}

const NO_PROPS: Properties = Object.freeze({});

/** Reads the fixed-header flags, topic length, packet identifier and 5.0 properties of a PUBLISH (§3.3). */
export function parsePublish(header: number, body: Uint8Array, version: ProtocolVersion): PublishFrame {
  const qos = (header >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (header & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]');
  if (body.length < 2) throw malformed('PUBLISH ends inside the topic length');
  const topicLength = (body[0]! << 8) | body[1]!;
  let pos = 2 + topicLength;
  let packetId = 0;
  if (qos > 0) {
    if (pos + 2 > body.length) throw malformed('PUBLISH ends inside the packet identifier');
    packetId = (body[pos]! << 8) | body[pos + 1]!;
    if (packetId === 0) throw malformed('packet identifier 0 is not allowed [MQTT-2.3.1-1]');
    pos += 2;
  } else if (pos > body.length) {
    throw malformed('PUBLISH ends inside the topic');
  }
  let props = NO_PROPS;
  let forward: Uint8Array | null = null;
  if (version === 5) {
    if (pos < body.length && body[pos] === 0) {
      pos += 1;
    } else {
      const r = new Reader(body, pos);
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
  return { qos: qos as QoS, dup, retain: (header & 0x01) !== 0, topicStart: 2, topicLength, packetId, payloadStart: pos, props, forward };
}

/**
 * Writes a PUBLISH fixed header for a message stored as [topic length][topic][payload] of `stored`
 * bytes, with `middle` bytes (packet identifier, properties) between topic and payload.
 * Returns the bytes written.
 */
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

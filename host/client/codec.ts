// The client's half of MQTT 3.1.1 / 5.0: encodes what a client sends and decodes what a server
// sends. The primitives (Reader, Writer, the 5.0 property tables) are the broker's own, so the
// browser bundle carries one copy of them.

import type { AckType } from '../core/codec/acks.js';
import { PacketType, type ProtocolVersion } from '../core/codec/constants.js';
import { malformed, protocolError } from '../core/codec/errors.js';
import { encodeProperties, readProperties, type Properties, writeProperties } from '../core/codec/properties.js';
import { encodePublish as encodeOutgoing } from '../core/codec/publish.js';
import { Reader } from '../core/codec/reader.js';
import { wrapPacket, Writer } from '../core/codec/writer.js';
import type { ClientProtocolVersion, PublishProperties, QoS, ReceivedMessage, SubscribeOptions } from './types.js';

export { encodeAck } from '../core/codec/acks.js';

const utf8 = new TextEncoder();

export const toBytes = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? utf8.encode(data) : data);

/** Only the properties a client may send on PUBLISH (a received message's subscription identifiers are dropped). */
function publishProperties(p: PublishProperties | undefined): Properties | undefined {
  if (!p) return undefined;
  const { subscriptionIdentifiers: _ids, ...rest } = p;
  return rest;
}

export interface ConnectFields {
  version: ClientProtocolVersion;
  clientId: string;
  clean: boolean;
  keepAlive: number;
  username?: string;
  password?: Uint8Array;
  will?: { topic: string; payload: Uint8Array; qos: QoS; retain: boolean; properties?: Properties };
  properties?: Properties;
}

/** CONNECT (§3.1). */
export function encodeConnect(c: ConnectFields): Uint8Array {
  if (c.version === 4 && c.password !== undefined && c.username === undefined) {
    throw new TypeError('MQTT 3.1.1 allows a password only together with a user name [MQTT-3.1.2-22]');
  }
  let flags = c.clean ? 0x02 : 0;
  if (c.will) flags |= 0x04 | (c.will.qos << 3) | (c.will.retain ? 0x20 : 0);
  if (c.password !== undefined) flags |= 0x40;
  if (c.username !== undefined) flags |= 0x80;
  const w = new Writer(64).string('MQTT').u8(c.version).u8(flags).u16(c.keepAlive);
  if (c.version === 5) writeProperties(w, c.properties);
  w.string(c.clientId);
  if (c.will) {
    if (c.version === 5) writeProperties(w, c.will.properties);
    w.string(c.will.topic).binary(c.will.payload);
  }
  if (c.username !== undefined) w.string(c.username);
  if (c.password !== undefined) w.binary(c.password);
  return wrapPacket(PacketType.CONNECT << 4, w.result());
}

/** PUBLISH (§3.3), by the codec's one encoder, written straight into one array of its size. */
export function encodePublish(
  version: ClientProtocolVersion,
  topic: Uint8Array,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: PublishProperties | undefined,
): Uint8Array {
  const own = version === 5 ? publishProperties(properties) : undefined;
  return encodeOutgoing({
    version,
    qos,
    dup,
    retain,
    packetId,
    topic,
    topicAt: 0,
    topicLength: topic.length,
    properties: own && Object.keys(own).length > 0 ? encodeProperties(own) : null,
    forward: null,
    forwardAt: 0,
    forwardLength: 0,
    payload,
    payloadAt: 0,
    payloadLength: payload.length,
  });
}

/** SUBSCRIBE (§3.8): one packet for several filters with the same options. */
export function encodeSubscribe(version: ClientProtocolVersion, packetId: number, filters: string[], o: SubscribeOptions): Uint8Array {
  const w = new Writer(32).u16(packetId);
  if (version === 5) writeProperties(w, o.subscriptionIdentifier ? { subscriptionIdentifiers: [o.subscriptionIdentifier] } : undefined);
  let options: number = o.qos ?? 0;
  if (version === 5) options |= (o.noLocal ? 0x04 : 0) | (o.retainAsPublished ? 0x08 : 0) | ((o.retainHandling ?? 0) << 4);
  for (const f of filters) w.string(f).u8(options);
  return wrapPacket((PacketType.SUBSCRIBE << 4) | 2, w.result());
}

export function encodeUnsubscribe(version: ClientProtocolVersion, packetId: number, filters: string[]): Uint8Array {
  const w = new Writer(32).u16(packetId);
  if (version === 5) writeProperties(w, undefined);
  for (const f of filters) w.string(f);
  return wrapPacket((PacketType.UNSUBSCRIBE << 4) | 2, w.result());
}

/** A fresh array each time: links take ownership of what they are given (a MessagePort transfers it). */
export const encodePingreq = (): Uint8Array => new Uint8Array([PacketType.PINGREQ << 4, 0]);

/** DISCONNECT; 0x00 (normal) or, 5.0 only, 0x04 (disconnect with will message). */
export function encodeDisconnect(version: ClientProtocolVersion, reason = 0): Uint8Array {
  if (version === 5 && reason !== 0) return new Uint8Array([PacketType.DISCONNECT << 4, 1, reason]);
  return new Uint8Array([PacketType.DISCONNECT << 4, 0]);
}

// ---- server → client ----

export interface ConnackPacket {
  type: PacketType.CONNACK;
  sessionPresent: boolean;
  /** 3.1.1 return code or 5.0 reason code; 0 = accepted. */
  reasonCode: number;
  props: Properties;
}

export interface PublishPacket extends ReceivedMessage {
  type: PacketType.PUBLISH;
  packetId: number;
  topicAlias: number | undefined;
}

export interface AckPacket {
  type: AckType;
  packetId: number;
  reasonCode: number;
  props: Properties;
}

export interface SubackPacket {
  type: PacketType.SUBACK | PacketType.UNSUBACK;
  packetId: number;
  /** SUBACK: granted QoS or failure per filter; 5.0 UNSUBACK: reason per filter; 3.1.1 UNSUBACK: empty. */
  codes: number[];
  props: Properties;
}

export interface DisconnectPacket {
  type: PacketType.DISCONNECT;
  reasonCode: number;
  props: Properties;
}

export type ServerPacket =
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubackPacket
  | DisconnectPacket
  | { type: PacketType.PINGRESP };

const NO_PROPS: Properties = Object.freeze({});
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes one packet a server sent; the body is `buf[start, end)`, the returned values are copies. */
export function decodeServerPacket(header: number, buf: Uint8Array, start: number, end: number, version: ProtocolVersion): ServerPacket {
  const type = header >> 4;
  const flags = header & 0x0f;
  if (type !== PacketType.PUBLISH && flags !== (type === PacketType.PUBREL ? 2 : 0)) {
    throw malformed(`reserved flags of packet type ${type} are ${flags}`);
  }
  const r = new Reader(buf, start, end);
  const props = (packetType: number): Properties => (version === 5 && r.remaining > 0 ? readProperties(r, packetType).props : NO_PROPS);
  switch (type) {
    case PacketType.CONNACK: {
      const ackFlags = r.u8('the CONNACK flags');
      if (ackFlags & 0xfe) throw malformed('reserved CONNACK flags are set');
      const reasonCode = r.u8('the CONNACK code');
      return { type, sessionPresent: (ackFlags & 1) === 1, reasonCode, props: props(PacketType.CONNACK) };
    }
    case PacketType.PUBLISH:
      return decodePublish(header, r, version);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const packetId = r.u16('the packet identifier');
      const reasonCode = version === 5 && r.remaining > 0 ? r.u8('the reason code') : 0;
      return { type, packetId, reasonCode, props: props(type) };
    }
    case PacketType.SUBACK:
    case PacketType.UNSUBACK: {
      const packetId = r.u16('the packet identifier');
      const p = version === 5 ? readProperties(r, type).props : NO_PROPS;
      return { type, packetId, codes: Array.from(r.rest()), props: p };
    }
    case PacketType.PINGRESP:
      return { type };
    case PacketType.DISCONNECT: {
      if (version !== 5) throw protocolError('a 3.1.1 server does not send DISCONNECT');
      const reasonCode = r.remaining > 0 ? r.u8('the reason code') : 0;
      return { type, reasonCode, props: props(PacketType.DISCONNECT) };
    }
    default:
      throw protocolError(`a client does not expect packet type ${type}`);
  }
}

function decodePublish(header: number, r: Reader, version: ProtocolVersion): PublishPacket {
  const qos = ((header >> 1) & 3) as QoS;
  if ((qos as number) === 3) throw malformed('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const topicBytes = r.binary('the topic name');
  let topic: string;
  try {
    topic = decoder.decode(topicBytes);
  } catch {
    throw malformed('the topic name is not well-formed UTF-8');
  }
  const packetId = qos > 0 ? r.u16('the packet identifier') : 0;
  if (qos > 0 && packetId === 0) throw malformed('packet identifier 0 is not allowed [MQTT-2.3.1-1]');
  let properties: PublishProperties & { topicAlias?: number } = {};
  if (version === 5) properties = { ...readProperties(r, PacketType.PUBLISH).props };
  const { topicAlias, ...rest } = properties;
  return {
    type: PacketType.PUBLISH,
    topic,
    payload: r.rest().slice(),
    qos,
    retain: (header & 1) === 1,
    dup: (header & 8) === 8,
    packetId,
    topicAlias,
    properties: rest,
  };
}

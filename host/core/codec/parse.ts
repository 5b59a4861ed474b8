import { malformed, protocolError } from './errors.js';
import { PacketType, type ProtocolVersion } from './constants.js';
import type { AckPacket, ConnectPacket, ControlPacket, QoS, Subscription, WillMessage } from './packets.js';
import { type Properties, readProperties, WILL } from './properties.js';
import { Reader } from './reader.js';

const NO_PROPS: Properties = Object.freeze({});

/**
 * Decodes one control packet a client sent (anything but PUBLISH) from its fixed header byte and
 * body `buf[start, end)`.
 * `version` is the session's protocol level, or 0 before CONNECT. Throws ProtocolError.
 */
export function parseControl(header: number, buf: Uint8Array, start: number, end: number, version: ProtocolVersion | 0): ControlPacket {
  const type = header >> 4;
  const flags = header & 0x0f;
  // Reserved fixed-header flags must be exactly as listed in §2.2.2 [MQTT-2.2.2-1], [MQTT-2.2.2-2].
  const expected = type === PacketType.PUBREL || type === PacketType.SUBSCRIBE || type === PacketType.UNSUBSCRIBE ? 2 : 0;
  if (flags !== expected) throw malformed(`reserved flags of packet type ${type} are ${flags}, not ${expected}`);
  const r = new Reader(buf, start, end);
  const v5 = version === 5;
  switch (type) {
    case PacketType.CONNECT:
      return parseConnect(r);
    case PacketType.SUBSCRIBE:
      return parseSubscribe(r, version);
    case PacketType.UNSUBSCRIBE: {
      const packetId = readPacketId(r);
      const props = v5 ? readProperties(r, type).props : NO_PROPS;
      const filters: string[] = [];
      while (r.remaining > 0) filters.push(r.string('a topic filter'));
      if (filters.length === 0) throw protocolError('UNSUBSCRIBE carries no topic filter (§3.10.3)');
      return { type, packetId, filters, props };
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const packetId = readPacketId(r);
      const ack: AckPacket = { type, packetId, reason: 0, props: NO_PROPS };
      if (v5) {
        if (r.remaining > 0) ack.reason = r.u8('the reason code');
        if (r.remaining > 0) ack.props = readProperties(r, type).props;
      }
      expectEnd(r, type);
      return ack;
    }
    case PacketType.PINGREQ:
      expectEnd(r, type);
      return { type };
    case PacketType.DISCONNECT: {
      let reason = 0;
      let props = NO_PROPS;
      if (v5) {
        if (r.remaining > 0) reason = r.u8('the reason code');
        if (r.remaining > 0) props = readProperties(r, type).props;
      }
      expectEnd(r, type);
      return { type, reason, props };
    }
    case PacketType.AUTH: {
      if (!v5) throw malformed('AUTH exists only in MQTT 5.0');
      let reason = 0;
      let props = NO_PROPS;
      if (r.remaining > 0) reason = r.u8('the reason code');
      if (r.remaining > 0) props = readProperties(r, type).props;
      expectEnd(r, type);
      return { type, reason, props };
    }
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP go only from server to client; 0 is reserved.
      throw malformed(`a client may not send packet type ${type}`);
  }
}

function expectEnd(r: Reader, type: number): void {
  if (r.remaining !== 0) throw malformed(`packet type ${type} has ${r.remaining} unexpected trailing bytes`);
}

function readPacketId(r: Reader): number {
  const id = r.u16('the packet identifier');
  if (id === 0) throw malformed('packet identifier 0 is not allowed [MQTT-2.3.1-1]');
  return id;
}

function parseConnect(r: Reader): ConnectPacket {
  const name = r.string('the protocol name');
  const level = r.u8('the protocol level');
  if (!((name === 'MQTT' && (level === 4 || level === 5)) || (name === 'MQIsdp' && level === 3))) {
    if (name !== 'MQTT' && name !== 'MQIsdp') throw protocolError(`unknown protocol name ${JSON.stringify(name)} [MQTT-3.1.2-1]`);
    throw new UnsupportedVersion(level);
  }
  const version = level as ProtocolVersion;
  const flags = r.u8('the connect flags');
  if (flags & 0x01) throw malformed('the reserved connect flag is set [MQTT-3.1.2-3]');
  const cleanStart = (flags & 0x02) !== 0;
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (willQos === 3) throw malformed('will QoS 3 is not allowed [MQTT-3.1.2-14]');
  if (!willFlag && (willQos !== 0 || willRetain)) {
    throw malformed('will QoS and will retain must be 0 without a will [MQTT-3.1.2-13], [MQTT-3.1.2-15]');
  }
  if (version < 5 && hasPassword && !hasUsername) throw malformed('a password without a user name [MQTT-3.1.2-22]');
  const keepAlive = r.u16('the keep alive');
  const props = version === 5 ? readProperties(r, PacketType.CONNECT).props : NO_PROPS;
  const clientId = r.string('the client identifier');
  let will: WillMessage | null = null;
  if (willFlag) {
    const willProps = version === 5 ? readProperties(r, WILL) : { props: NO_PROPS, forward: null };
    const topic = r.string('the will topic');
    const payload = r.binary('the will payload').slice();
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, props: willProps.props, forward: willProps.forward };
  }
  const username = hasUsername ? r.string('the user name') : undefined;
  const password = hasPassword ? r.binary('the password').slice() : undefined;
  expectEnd(r, PacketType.CONNECT);
  return { type: PacketType.CONNECT, version, cleanStart, keepAlive, clientId, will, username, password, props };
}

function parseSubscribe(r: Reader, version: ProtocolVersion | 0): ControlPacket {
  const packetId = readPacketId(r);
  const props = version === 5 ? readProperties(r, PacketType.SUBSCRIBE).props : NO_PROPS;
  const subscriptions: Subscription[] = [];
  while (r.remaining > 0) {
    const filter = r.string('a topic filter');
    const options = r.u8('the subscription options');
    const qos = options & 0x03;
    if (qos === 3) throw malformed('subscription QoS 3 is not allowed [MQTT-3.8.3-4]');
    if (version === 5) {
      if (options & 0xc0) throw malformed('reserved subscription option bits are set [MQTT-3.8.3-5]');
      const retainHandling = (options >> 4) & 0x03;
      if (retainHandling === 3) throw protocolError('retain handling 3 is not allowed');
      subscriptions.push({
        filter,
        qos: qos as QoS,
        noLocal: (options & 0x04) !== 0,
        retainAsPublished: (options & 0x08) !== 0,
        retainHandling: retainHandling as 0 | 1 | 2,
      });
    } else {
      if (options & 0xfc) throw malformed('reserved subscription option bits are set [MQTT-3.8.3-4]');
      subscriptions.push({ filter, qos: qos as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    }
  }
  if (subscriptions.length === 0) throw protocolError('SUBSCRIBE carries no topic filter (§3.8.3)');
  return { type: PacketType.SUBSCRIBE, packetId, subscriptions, props };
}

/** CONNECT named a protocol level this server does not speak (answered with CONNACK 0x01 / 0x84). */
export class UnsupportedVersion extends Error {
  constructor(readonly level: number) {
    super(`unsupported protocol level ${level}`);
    this.name = 'UnsupportedVersion';
  }
}

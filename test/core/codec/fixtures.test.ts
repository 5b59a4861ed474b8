import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeConnect, decodeServerPacket, encodeDisconnect, encodePingreq, encodePublish, encodeSubscribe, encodeUnsubscribe } from '../../../host/client/codec.js';
import { encodeAck } from '../../../host/core/codec/acks.js';
import { PacketType, type ProtocolVersion } from '../../../host/core/codec/constants.js';
import * as generate from '../../../host/core/codec/generate.js';
import { parseControl } from '../../../host/core/codec/parse.js';
import { encodeDeliveryProperties, encodePublish as encodeOutgoing, parsePublish } from '../../../host/core/codec/publish.js';

// One entry per packet type and protocol version: the bytes the specification gives, and the
// fields they carry. Client → server packets are encoded by host/client and parsed by the broker;
// server → client packets are encoded by the broker and decoded by host/client (AUTH, which
// host/client does not speak, by the broker's parser). 3.1 differs from 3.1.1 only in CONNECT and
// CONNACK, so only those have 3.1 entries. Each entry is checked both ways: fields → bytes, bytes → fields.

const te = new TextEncoder();
const utf8 = (s: string): Uint8Array => te.encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(s.split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));

/** The fixed header byte and the body's bounds of one whole packet. */
function split(bytes: Uint8Array): { header: number; start: number; end: number } {
  let at = 1;
  while (bytes[at]! & 0x80) at++;
  return { header: bytes[0]!, start: at + 1, end: bytes.length };
}

const parse = (version: ProtocolVersion) => (bytes: Uint8Array): unknown => {
  const { header, start, end } = split(bytes);
  return parseControl(header, bytes, start, end, version);
};

const parseIncomingPublish = (version: ProtocolVersion) => (bytes: Uint8Array): unknown => {
  const { header, start, end } = split(bytes);
  const f = parsePublish(header, bytes, start, end, version);
  const topic = new TextDecoder().decode(bytes.subarray(f.topicStart, f.topicStart + f.topicLength));
  return { qos: f.qos, dup: f.dup, retain: f.retain, topic, packetId: f.packetId, payload: bytes.slice(f.payloadStart, f.payloadEnd), props: f.props, forward: f.forward };
};

const decode = (version: ProtocolVersion) => (bytes: Uint8Array): unknown => {
  const { header, start, end } = split(bytes);
  return decodeServerPacket(header, bytes, start, end, version);
};

/** A broker → client PUBLISH through the broker's one encoder. */
function outgoing(version: ProtocolVersion, o: { qos: 0 | 1 | 2; dup?: boolean; retain?: boolean; packetId?: number; topic: string; payload: string; properties?: Uint8Array | null; forward?: Uint8Array }): Uint8Array {
  const topic = utf8(o.topic);
  const payload = utf8(o.payload);
  const forward = o.forward ?? new Uint8Array(0);
  return encodeOutgoing({
    version,
    qos: o.qos,
    dup: o.dup ?? false,
    retain: o.retain ?? false,
    packetId: o.packetId ?? 0,
    topic,
    topicAt: 0,
    topicLength: topic.length,
    properties: o.properties ?? null,
    forward,
    forwardAt: 0,
    forwardLength: forward.length,
    payload,
    payloadAt: 0,
    payloadLength: payload.length,
  });
}

interface Fixture {
  name: string;
  bytes: string;
  /** Fields → bytes; absent where no encoder of the project writes the packet. */
  encode?: () => Uint8Array;
  /** Bytes → fields. */
  decode: (bytes: Uint8Array) => unknown;
  fields: unknown;
}

const none = {};

const fixtures: Fixture[] = [
  // ---- CONNECT (client → server) ----
  {
    name: 'CONNECT 3.1 (protocol name MQIsdp)',
    bytes: '10 10 00 06 4d 51 49 73 64 70 03 02 00 3c 00 02 63 31',
    decode: parse(3),
    fields: { type: PacketType.CONNECT, version: 3, cleanStart: true, keepAlive: 60, clientId: 'c1', will: null, username: undefined, password: undefined, props: none },
  },
  {
    name: 'CONNECT 3.1.1 with a will, user name and password',
    bytes: '10 1d 00 04 4d 51 54 54 04 ec 00 1e 00 02 63 31 00 01 77 00 03 62 79 65 00 01 75 00 02 70 77',
    encode: () => encodeConnect({ version: 4, clientId: 'c1', clean: false, keepAlive: 30, username: 'u', password: utf8('pw'), will: { topic: 'w', payload: utf8('bye'), qos: 1, retain: true } }),
    decode: parse(4),
    fields: {
      type: PacketType.CONNECT,
      version: 4,
      cleanStart: false,
      keepAlive: 30,
      clientId: 'c1',
      will: { topic: 'w', payload: utf8('bye'), qos: 1, retain: true, props: none, forward: null },
      username: 'u',
      password: utf8('pw'),
      props: none,
    },
  },
  {
    name: 'CONNECT 5.0 with properties and will properties (the forwarded ones kept as bytes)',
    bytes: '10 27 00 04 4d 51 54 54 05 06 00 3c 08 11 00 00 00 78 21 00 0a 00 02 63 35 09 18 00 00 00 05 03 00 01 74 00 01 77 00 01 78',
    encode: () =>
      encodeConnect({
        version: 5,
        clientId: 'c5',
        clean: true,
        keepAlive: 60,
        properties: { sessionExpiryInterval: 120, receiveMaximum: 10 },
        will: { topic: 'w', payload: utf8('x'), qos: 0, retain: false, properties: { willDelayInterval: 5, contentType: 't' } },
      }),
    decode: parse(5),
    fields: {
      type: PacketType.CONNECT,
      version: 5,
      cleanStart: true,
      keepAlive: 60,
      clientId: 'c5',
      will: { topic: 'w', payload: utf8('x'), qos: 0, retain: false, props: { willDelayInterval: 5, contentType: 't' }, forward: hex('03 00 01 74') },
      username: undefined,
      password: undefined,
      props: { sessionExpiryInterval: 120, receiveMaximum: 10 },
    },
  },
  // ---- CONNACK (server → client) ----
  {
    name: 'CONNACK 3.1 (no Session Present flag)',
    bytes: '20 02 00 00',
    encode: () => generate.connack(3, false, 0),
    decode: decode(3),
    fields: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0, props: none },
  },
  {
    name: 'CONNACK 3.1.1 with Session Present',
    bytes: '20 02 01 00',
    encode: () => generate.connack(4, true, 0),
    decode: decode(4),
    fields: { type: PacketType.CONNACK, sessionPresent: true, reasonCode: 0, props: none },
  },
  {
    name: 'CONNACK 5.0 with properties',
    bytes: '20 09 00 00 06 21 00 14 22 00 05',
    encode: () => generate.connack(5, false, 0, { receiveMaximum: 20, topicAliasMaximum: 5 }),
    decode: decode(5),
    fields: { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0, props: { receiveMaximum: 20, topicAliasMaximum: 5 } },
  },
  // ---- PUBLISH, both ways ----
  {
    name: 'PUBLISH 3.1.1 client → server, QoS 1',
    bytes: '32 09 00 03 74 2f 31 00 0a 68 69',
    encode: () => encodePublish(4, utf8('t/1'), utf8('hi'), 1, false, false, 10, undefined),
    decode: parseIncomingPublish(4),
    fields: { qos: 1, dup: false, retain: false, topic: 't/1', packetId: 10, payload: utf8('hi'), props: none, forward: null },
  },
  {
    name: 'PUBLISH 5.0 client → server, QoS 2 retained, with properties (the forwarded ones kept as bytes, in order)',
    bytes: '35 15 00 01 74 00 07 0e 01 01 02 00 00 00 1e 26 00 01 61 00 01 62 78',
    encode: () => encodePublish(5, utf8('t'), utf8('x'), 2, true, false, 7, { payloadFormatIndicator: 1, messageExpiryInterval: 30, userProperties: [['a', 'b']] }),
    decode: parseIncomingPublish(5),
    fields: {
      qos: 2,
      dup: false,
      retain: true,
      topic: 't',
      packetId: 7,
      payload: utf8('x'),
      props: { payloadFormatIndicator: 1, messageExpiryInterval: 30, userProperties: [['a', 'b']] },
      forward: hex('01 01 26 00 01 61 00 01 62'),
    },
  },
  {
    name: 'PUBLISH 3.1.1 server → client, QoS 0 retained',
    bytes: '31 0a 00 03 61 2f 62 68 65 6c 6c 6f',
    encode: () => outgoing(4, { qos: 0, retain: true, topic: 'a/b', payload: 'hello' }),
    decode: decode(4),
    fields: { type: PacketType.PUBLISH, topic: 'a/b', payload: utf8('hello'), qos: 0, retain: true, dup: false, packetId: 0, topicAlias: undefined, properties: none },
  },
  {
    name: 'PUBLISH 5.0 server → client, QoS 1 resent (DUP) by a known topic alias, with per-delivery and forwarded properties',
    bytes: '3a 14 00 00 00 05 0e 02 00 00 00 09 0b 03 23 00 02 03 00 01 74 70',
    encode: () => outgoing(5, { qos: 1, dup: true, packetId: 5, topic: '', payload: 'p', properties: encodeDeliveryProperties(9, [3], 2), forward: hex('03 00 01 74') }),
    decode: decode(5),
    fields: {
      type: PacketType.PUBLISH,
      topic: '',
      payload: utf8('p'),
      qos: 1,
      retain: false,
      dup: true,
      packetId: 5,
      topicAlias: 2,
      properties: { messageExpiryInterval: 9, subscriptionIdentifiers: [3], contentType: 't' },
    },
  },
  // ---- SUBSCRIBE / SUBACK ----
  {
    name: 'SUBSCRIBE 3.1.1, two filters',
    bytes: '82 0c 00 01 00 03 61 2f 2b 01 00 01 62 01',
    encode: () => encodeSubscribe(4, 1, ['a/+', 'b'], { qos: 1 }),
    decode: parse(4),
    fields: {
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [
        { filter: 'a/+', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { filter: 'b', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
      props: none,
    },
  },
  {
    name: 'SUBSCRIBE 5.0 with every option and a subscription identifier',
    bytes: '82 0c 00 02 03 0b ac 02 00 03 63 2f 23 2e',
    encode: () => encodeSubscribe(5, 2, ['c/#'], { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionIdentifier: 300 }),
    decode: parse(5),
    fields: {
      type: PacketType.SUBSCRIBE,
      packetId: 2,
      subscriptions: [{ filter: 'c/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 }],
      props: { subscriptionIdentifiers: [300] },
    },
  },
  {
    name: 'SUBACK 3.1.1',
    bytes: '90 04 00 01 01 80',
    encode: () => generate.suback(4, 1, [1, 0x80]),
    decode: decode(4),
    fields: { type: PacketType.SUBACK, packetId: 1, codes: [1, 0x80], props: none },
  },
  {
    name: 'SUBACK 5.0 with a reason string',
    bytes: '90 09 00 02 04 1f 00 01 78 02 87',
    encode: () => generate.suback(5, 2, [2, 0x87], { reasonString: 'x' }),
    decode: decode(5),
    fields: { type: PacketType.SUBACK, packetId: 2, codes: [2, 0x87], props: { reasonString: 'x' } },
  },
  // ---- UNSUBSCRIBE / UNSUBACK ----
  {
    name: 'UNSUBSCRIBE 3.1.1',
    bytes: 'a2 0a 00 03 00 01 61 00 03 62 2f 63',
    encode: () => encodeUnsubscribe(4, 3, ['a', 'b/c']),
    decode: parse(4),
    fields: { type: PacketType.UNSUBSCRIBE, packetId: 3, filters: ['a', 'b/c'], props: none },
  },
  {
    name: 'UNSUBSCRIBE 5.0',
    bytes: 'a2 06 00 04 00 00 01 61',
    encode: () => encodeUnsubscribe(5, 4, ['a']),
    decode: parse(5),
    fields: { type: PacketType.UNSUBSCRIBE, packetId: 4, filters: ['a'], props: none },
  },
  {
    name: 'UNSUBACK 3.1.1 (no payload)',
    bytes: 'b0 02 00 03',
    encode: () => generate.unsuback(4, 3, [0]),
    decode: decode(4),
    fields: { type: PacketType.UNSUBACK, packetId: 3, codes: [], props: none },
  },
  {
    name: 'UNSUBACK 5.0 with a reason code per filter',
    bytes: 'b0 05 00 04 00 00 11',
    encode: () => generate.unsuback(5, 4, [0, 0x11]),
    decode: decode(5),
    fields: { type: PacketType.UNSUBACK, packetId: 4, codes: [0, 0x11], props: none },
  },
  // ---- PINGREQ / PINGRESP ----
  { name: 'PINGREQ', bytes: 'c0 00', encode: encodePingreq, decode: parse(4), fields: { type: PacketType.PINGREQ } },
  { name: 'PINGRESP', bytes: 'd0 00', encode: generate.pingresp, decode: decode(4), fields: { type: PacketType.PINGRESP } },
  // ---- DISCONNECT ----
  {
    name: 'DISCONNECT 3.1.1 client → server',
    bytes: 'e0 00',
    encode: () => encodeDisconnect(4),
    decode: parse(4),
    fields: { type: PacketType.DISCONNECT, reason: 0, props: none },
  },
  {
    name: 'DISCONNECT 5.0 client → server, with will (0x04)',
    bytes: 'e0 01 04',
    encode: () => encodeDisconnect(5, 4),
    decode: parse(5),
    fields: { type: PacketType.DISCONNECT, reason: 4, props: none },
  },
  {
    name: 'DISCONNECT 5.0 server → client, with a reason string',
    bytes: 'e0 08 8b 06 1f 00 03 62 79 65',
    encode: () => generate.disconnect(0x8b, { reasonString: 'bye' }),
    decode: decode(5),
    fields: { type: PacketType.DISCONNECT, reasonCode: 0x8b, props: { reasonString: 'bye' } },
  },
  // ---- AUTH (5.0 only) ----
  {
    name: 'AUTH 5.0 (continue, with method and data)',
    bytes: 'f0 0f 18 0d 15 00 05 53 43 52 41 4d 16 00 02 01 02',
    encode: () => generate.auth(0x18, { authenticationMethod: 'SCRAM', authenticationData: hex('01 02') }),
    decode: parse(5),
    fields: { type: PacketType.AUTH, reason: 0x18, props: { authenticationMethod: 'SCRAM', authenticationData: hex('01 02') } },
  },
];

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP: one shape, both ways, 3.1.1 and 5.0 ----
const ACKS = [
  ['PUBACK', PacketType.PUBACK, '40'],
  ['PUBREC', PacketType.PUBREC, '50'],
  ['PUBREL', PacketType.PUBREL, '62'],
  ['PUBCOMP', PacketType.PUBCOMP, '70'],
] as const;
for (const [name, type, header] of ACKS) {
  fixtures.push(
    {
      name: `${name} 3.1.1 client → server`,
      bytes: `${header} 02 01 02`,
      encode: () => encodeAck(type, 4, 0x0102),
      decode: parse(4),
      fields: { type, packetId: 0x0102, reason: 0, props: none },
    },
    {
      name: `${name} 5.0 client → server, with a reason code`,
      bytes: `${header} 03 00 03 80`,
      encode: () => encodeAck(type, 5, 3, 0x80),
      decode: parse(5),
      fields: { type, packetId: 3, reason: 0x80, props: none },
    },
    {
      name: `${name} 3.1.1 server → client`,
      bytes: `${header} 02 00 09`,
      encode: () => encodeAck(type, 4, 9),
      decode: decode(4),
      fields: { type, packetId: 9, reasonCode: 0, props: none },
    },
    {
      name: `${name} 5.0 server → client, with a reason code and a reason string`,
      bytes: `${header} 09 00 09 92 05 1f 00 02 6e 6f`,
      encode: () => encodeAck(type, 5, 9, 0x92, { reasonString: 'no' }),
      decode: decode(5),
      fields: { type, packetId: 9, reasonCode: 0x92, props: { reasonString: 'no' } },
    },
  );
}

describe('the codec against the specification, packet by packet', () => {
  for (const f of fixtures) {
    it(`${f.name}: bytes → fields${f.encode ? ' and fields → bytes' : ''}`, () => {
      const bytes = hex(f.bytes);
      assert.deepEqual(f.decode(bytes), f.fields);
      if (f.encode) assert.deepEqual(f.encode(), bytes);
    });
  }
});

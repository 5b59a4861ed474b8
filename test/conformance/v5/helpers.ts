/**
 * Wire-level tools for the MQTT 5.0 conformance suite: packets are built byte by byte (so a test
 * can send exactly what the specification forbids, and keep the order of user properties), and
 * what the broker sends is decoded here, strictly, from the packets the shared Peer splits out.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach } from 'node:test';
import type { ServerOptions } from '../../../host/node/server.js';
import { type ServerTestBroker, startBroker, type TestBroker } from '../../helpers/broker.js';
import { Peer as RawPeer } from '../../helpers/peer.js';
import { cat, type Frame, packet, type Part, str, T, typeName, u16, u32, varint } from '../../helpers/wire.js';

export type { Frame } from '../../helpers/wire.js';
export { cat, packet, str, T, typeName, u16, u32, varint } from '../../helpers/wire.js';
export { pace, until } from '../../helpers/wait.js';

/**
 * A fresh broker with `options` for every test of the enclosing describe (closed, and its arena
 * checked empty, after each). Call the returned function inside a test to get it.
 */
export function useBroker(options: ServerOptions = {}): () => ServerTestBroker {
  let b: ServerTestBroker | undefined;
  beforeEach(async () => {
    b = await startBroker(options);
  });
  afterEach(async () => {
    const current = b;
    b = undefined;
    await current?.close();
  });
  return () => {
    assert.ok(b, 'no broker: useBroker() must be called in a describe');
    return b;
  };
}

/** Property identifiers (§2.2.2.2). */
export const P = {
  PayloadFormatIndicator: 0x01,
  MessageExpiryInterval: 0x02,
  ContentType: 0x03,
  ResponseTopic: 0x08,
  CorrelationData: 0x09,
  SubscriptionIdentifier: 0x0b,
  SessionExpiryInterval: 0x11,
  AssignedClientIdentifier: 0x12,
  ServerKeepAlive: 0x13,
  AuthenticationMethod: 0x15,
  AuthenticationData: 0x16,
  RequestProblemInformation: 0x17,
  WillDelayInterval: 0x18,
  RequestResponseInformation: 0x19,
  ResponseInformation: 0x1a,
  ServerReference: 0x1c,
  ReasonString: 0x1f,
  ReceiveMaximum: 0x21,
  TopicAliasMaximum: 0x22,
  TopicAlias: 0x23,
  MaximumQoS: 0x24,
  RetainAvailable: 0x25,
  UserProperty: 0x26,
  MaximumPacketSize: 0x27,
  WildcardSubscriptionAvailable: 0x28,
  SubscriptionIdentifierAvailable: 0x29,
  SharedSubscriptionAvailable: 0x2a,
} as const;

/** The reason codes each packet may carry (§2.4 and the packet sections). */
export const REASONS = {
  CONNACK: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  PUBACK: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  PUBREC: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  PUBREL: [0x00, 0x92],
  PUBCOMP: [0x00, 0x92],
  SUBACK: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  UNSUBACK: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  DISCONNECT: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c,
    0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ],
} as const;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

export type Bytes = Part;
const enc = new TextEncoder();
export const bin = str;

/** One encoded property each; `props(...)` prefixes their Property Length. */
export const prop = {
  payloadFormat: (v: number): number[] => [P.PayloadFormatIndicator, v],
  messageExpiry: (s: number): number[] => [P.MessageExpiryInterval, ...u32(s)],
  contentType: (s: string | Uint8Array): number[] => [P.ContentType, ...str(s)],
  responseTopic: (s: string | Uint8Array): number[] => [P.ResponseTopic, ...str(s)],
  correlationData: (b: Uint8Array): number[] => [P.CorrelationData, ...bin(b)],
  subscriptionId: (n: number): number[] => [P.SubscriptionIdentifier, ...varint(n)],
  sessionExpiry: (s: number): number[] => [P.SessionExpiryInterval, ...u32(s)],
  willDelay: (s: number): number[] => [P.WillDelayInterval, ...u32(s)],
  reasonString: (s: string): number[] => [P.ReasonString, ...str(s)],
  receiveMaximum: (n: number): number[] => [P.ReceiveMaximum, ...u16(n)],
  topicAliasMaximum: (n: number): number[] => [P.TopicAliasMaximum, ...u16(n)],
  topicAlias: (n: number): number[] => [P.TopicAlias, ...u16(n)],
  user: (k: string | Uint8Array, v: string | Uint8Array): number[] => [P.UserProperty, ...str(k), ...str(v)],
  maximumPacketSize: (n: number): number[] => [P.MaximumPacketSize, ...u32(n)],
  requestProblemInformation: (v: number): number[] => [P.RequestProblemInformation, v],
  requestResponseInformation: (v: number): number[] => [P.RequestResponseInformation, v],
  authMethod: (s: string | Uint8Array): number[] => [P.AuthenticationMethod, ...str(s)],
  authData: (b: Uint8Array | string): number[] => [P.AuthenticationData, ...bin(typeof b === 'string' ? enc.encode(b) : b)],
};
export function props(list: Bytes[] = []): number[] {
  const b = cat(...list);
  return [...varint(b.length), ...b];
}

export interface WillOptions {
  topic: string | Uint8Array;
  payload?: string | Uint8Array;
  qos?: number;
  retain?: boolean;
  props?: Bytes[];
}
export interface ConnectOptions {
  clientId?: string | Uint8Array;
  clean?: boolean;
  keepAlive?: number;
  props?: Bytes[];
  will?: WillOptions;
  username?: string;
  password?: Uint8Array;
  /** Bits OR-ed into the Connect Flags as they are (e.g. the reserved bit 0x01). */
  extraFlags?: number;
  protocolName?: string;
  level?: number;
}
let idCounter = 0;
export const uniqueId = (prefix = 'c'): string => `${prefix}${process.pid.toString(36)}${(++idCounter).toString(36)}`;

/** A 5.0 CONNECT. */
export function connect(o: ConnectOptions = {}): Buffer {
  const will = o.will;
  let flags = (o.clean ?? true) ? 0x02 : 0;
  if (will) flags |= 0x04 | ((will.qos ?? 0) << 3) | (will.retain ? 0x20 : 0);
  if (o.password) flags |= 0x40;
  if (o.username !== undefined) flags |= 0x80;
  flags |= o.extraFlags ?? 0;
  const body = cat(
    str(o.protocolName ?? 'MQTT'),
    [o.level ?? 5, flags],
    u16(o.keepAlive ?? 0),
    props(o.props),
    str(o.clientId ?? uniqueId()),
    will ? cat(props(will.props), str(will.topic), bin(toBytes(will.payload ?? ''))) : [],
    o.username !== undefined ? str(o.username) : [],
    o.password ? bin(o.password) : [],
  );
  return packet(0x10, body);
}

const toBytes = (p: string | Bytes): Uint8Array => (typeof p === 'string' ? enc.encode(p) : Uint8Array.from(p));

export interface PublishOptions {
  topic: string | Uint8Array;
  payload?: string | Bytes;
  qos?: number;
  id?: number;
  retain?: boolean;
  dup?: boolean;
  props?: Bytes[];
}
export function publish(o: PublishOptions): Buffer {
  const qos = o.qos ?? 0;
  const header = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 0x01 : 0);
  return packet(header, str(o.topic), qos > 0 ? u16(o.id ?? 1) : [], props(o.props), toBytes(o.payload ?? ''));
}

/** Subscription Options byte (§3.8.3.1). */
export function subOpts(qos: number, o: { nl?: boolean; rap?: boolean; rh?: number } = {}): number {
  return qos | (o.nl ? 0x04 : 0) | (o.rap ? 0x08 : 0) | ((o.rh ?? 0) << 4);
}
export function subscribe(id: number, subs: [string | Uint8Array, number][], propList: Bytes[] = []): Buffer {
  return packet(0x82, u16(id), props(propList), ...subs.map(([f, o]) => cat(str(f), [o])));
}
export function unsubscribe(id: number, filters: (string | Uint8Array)[], propList: Bytes[] = []): Buffer {
  return packet(0xa2, u16(id), props(propList), ...filters.map((f) => str(f)));
}
/** PUBACK / PUBREC / PUBREL / PUBCOMP; the two-byte form unless a reason code or properties are given. */
export function ack(type: number, id: number, reason?: number, propList?: Bytes[]): Buffer {
  const header = (type << 4) | (type === T.PUBREL ? 2 : 0);
  if (reason === undefined && propList === undefined) return packet(header, u16(id));
  return packet(header, u16(id), [reason ?? 0], propList ? props(propList) : []);
}
export const pingreq = (): Buffer => Buffer.from([0xc0, 0x00]);
/** AUTH (§3.15): the reason code and properties; header flags as given (0 unless testing reserved bits). */
export function auth(reason: number, propList: Bytes[] = [], flags = 0): Buffer {
  return packet(0xf0 | flags, [reason], props(propList));
}
export function disconnect(reason?: number, propList?: Bytes[]): Buffer {
  if (reason === undefined && propList === undefined) return Buffer.from([0xe0, 0x00]);
  return packet(0xe0, [reason ?? 0], propList ? props(propList) : []);
}

// ---------------------------------------------------------------------------------------------
// Decoding (strict: every encoding rule the server must follow is checked on the way)
// ---------------------------------------------------------------------------------------------

export type PropValue = number | string | Buffer | [string, string];
export type PropList = [number, PropValue][];

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';
const KINDS: Record<number, Kind> = {
  0x01: 'byte',
  0x02: 'u32',
  0x03: 'string',
  0x08: 'string',
  0x09: 'binary',
  0x0b: 'varint',
  0x11: 'u32',
  0x12: 'string',
  0x13: 'u16',
  0x15: 'string',
  0x16: 'binary',
  0x17: 'byte',
  0x18: 'u32',
  0x19: 'byte',
  0x1a: 'string',
  0x1c: 'string',
  0x1f: 'string',
  0x21: 'u16',
  0x22: 'u16',
  0x23: 'u16',
  0x24: 'byte',
  0x25: 'byte',
  0x26: 'pair',
  0x27: 'u32',
  0x28: 'byte',
  0x29: 'byte',
  0x2a: 'byte',
};
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
  ) {}
  get left(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    assert.ok(this.left >= 1, 'packet ends early');
    return this.buf[this.pos++]!;
  }
  u16(): number {
    assert.ok(this.left >= 2, 'packet ends early');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    assert.ok(this.left >= 4, 'packet ends early');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A Variable Byte Integer, which must use the minimum number of bytes [MQTT-1.5.5-1]. */
  varint(): number {
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) {
        assert.ok(!(b === 0 && i > 0), 'the server sent a Variable Byte Integer that is not minimally encoded [MQTT-1.5.5-1]');
        return value;
      }
      mult *= 128;
    }
    assert.fail('Variable Byte Integer longer than 4 bytes');
  }
  binary(): Buffer {
    const n = this.u16();
    assert.ok(this.left >= n, 'binary data runs past the packet');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return Buffer.from(v);
  }
  /** A UTF-8 Encoded String, which must be well-formed and free of U+0000 [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
  string(): string {
    const b = this.binary();
    const s = utf8.decode(b);
    assert.ok(!s.includes('\u0000'), 'the server sent a string containing U+0000 [MQTT-1.5.4-2]');
    return s;
  }
  rest(): Buffer {
    const v = Buffer.from(this.buf.subarray(this.pos));
    this.pos = this.buf.length;
    return v;
  }
}

function readProps(c: Cursor): PropList {
  const len = c.varint();
  assert.ok(c.left >= len, 'property length runs past the packet');
  const end = c.pos + len;
  const list: PropList = [];
  while (c.pos < end) {
    const id = c.varint();
    const kind = KINDS[id];
    assert.ok(kind, `unknown property 0x${id.toString(16)}`);
    let v: PropValue;
    switch (kind) {
      case 'byte':
        v = c.u8();
        break;
      case 'u16':
        v = c.u16();
        break;
      case 'u32':
        v = c.u32();
        break;
      case 'varint':
        v = c.varint();
        break;
      case 'string':
        v = c.string();
        break;
      case 'binary':
        v = c.binary();
        break;
      case 'pair':
        v = [c.string(), c.string()];
        break;
    }
    list.push([id, v]);
  }
  assert.equal(c.pos, end, 'a property runs past the property length');
  return list;
}

/** The value of the (single) property `id`, or undefined. */
export function propOf<V extends PropValue = PropValue>(list: PropList, id: number): V | undefined {
  return list.find(([i]) => i === id)?.[1] as V | undefined;
}
export function propsOf<V extends PropValue = PropValue>(list: PropList, id: number): V[] {
  return list.filter(([i]) => i === id).map(([, v]) => v as V);
}
export const userProps = (list: PropList): [string, string][] => propsOf<[string, string]>(list, P.UserProperty);

export interface Connack {
  flags: number;
  sessionPresent: boolean;
  reason: number;
  props: PropList;
  size: number;
}
export function decodeConnack(f: Frame): Connack {
  assert.equal(f.type, T.CONNACK);
  const c = new Cursor(f.body);
  const flags = c.u8();
  const reason = c.u8();
  const props = readProps(c);
  assert.equal(c.left, 0, 'CONNACK has trailing bytes');
  return { flags, sessionPresent: (flags & 1) === 1, reason, props, size: f.raw.length };
}

export interface Publish {
  topic: string;
  qos: number;
  dup: boolean;
  retain: boolean;
  id: number;
  props: PropList;
  payload: Buffer;
  size: number;
}
export function decodePublish(f: Frame): Publish {
  assert.equal(f.type, T.PUBLISH);
  const qos = (f.flags >> 1) & 3;
  assert.notEqual(qos, 3, 'the server sent a PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const c = new Cursor(f.body);
  const topic = c.string();
  const id = qos > 0 ? c.u16() : 0;
  if (qos > 0) assert.notEqual(id, 0, 'the server sent packet identifier 0 [MQTT-2.2.1-4]');
  const props = readProps(c);
  return { topic, qos, dup: (f.flags & 8) !== 0, retain: (f.flags & 1) !== 0, id, props, payload: c.rest(), size: f.raw.length };
}

export interface Ack {
  type: number;
  id: number;
  reason: number;
  props: PropList;
  size: number;
}
/** PUBACK, PUBREC, PUBREL, PUBCOMP: reason code 0x00 when the Remaining Length is 2 (§3.4.2.1). */
export function decodeAck(f: Frame): Ack {
  const c = new Cursor(f.body);
  const id = c.u16();
  const reason = c.left > 0 ? c.u8() : 0;
  const props = c.left > 0 ? readProps(c) : [];
  assert.equal(c.left, 0, `${typeName(f.type)} has trailing bytes`);
  return { type: f.type, id, reason, props, size: f.raw.length };
}

export interface SubAck {
  id: number;
  props: PropList;
  codes: number[];
  size: number;
}
/** SUBACK / UNSUBACK. */
export function decodeSubAck(f: Frame): SubAck {
  const c = new Cursor(f.body);
  const id = c.u16();
  const props = readProps(c);
  return { id, props, codes: [...c.rest()], size: f.raw.length };
}

export interface Disconnect {
  reason: number;
  props: PropList;
  size: number;
}
/** Reason code 0x00 when the Remaining Length is 0 (§3.14.2.1). */
export function decodeDisconnect(f: Frame): Disconnect {
  const c = new Cursor(f.body);
  const reason = c.left > 0 ? c.u8() : 0;
  const props = c.left > 0 ? readProps(c) : [];
  assert.equal(c.left, 0, 'DISCONNECT has trailing bytes');
  return { reason, props, size: f.raw.length };
}

export interface Auth {
  reason: number;
  props: PropList;
  size: number;
}
/** AUTH: reason code 0x00 when the Remaining Length is 0 (§3.15.2.1). */
export function decodeAuth(f: Frame): Auth {
  assert.equal(f.type, T.AUTH);
  const c = new Cursor(f.body);
  const reason = c.left > 0 ? c.u8() : 0;
  const props = c.left > 0 ? readProps(c) : [];
  assert.equal(c.left, 0, 'AUTH has trailing bytes');
  return { reason, props, size: f.raw.length };
}

/** A raw 5.0 client: the shared Peer with this suite's vocabulary (packets built byte by byte, decoded strictly). */
export class Peer extends RawPeer {
  async publishFrame(ms?: number): Promise<Publish> {
    return decodePublish(await this.next(T.PUBLISH, ms));
  }
  async ack(type: number, ms?: number): Promise<Ack> {
    return decodeAck(await this.next(type, ms));
  }
  async disconnectFrame(ms?: number): Promise<Disconnect> {
    return decodeDisconnect(await this.next(T.DISCONNECT, ms));
  }

  /** Every PUBLISH that came before the answer to a PINGREQ sent now, decoded, in order. */
  async publishes(): Promise<Publish[]> {
    return (await this.drain()).map(decodePublish);
  }

  /** SUBSCRIBE and wait for its SUBACK (whose packet identifier must match [MQTT-3.8.4-2]). */
  async sub(filter: string | [string | Uint8Array, number][], options = 0, propList: Bytes[] = []): Promise<number[]> {
    const id = this.nextId();
    const subs: [string | Uint8Array, number][] = typeof filter === 'string' ? [[filter, options]] : filter;
    this.send(subscribe(id, subs, propList));
    const s = decodeSubAck(await this.next(T.SUBACK));
    assert.equal(s.id, id, 'SUBACK packet identifier');
    return s.codes;
  }

  async unsub(filters: string | (string | Uint8Array)[], propList: Bytes[] = []): Promise<number[]> {
    const id = this.nextId();
    this.send(unsubscribe(id, typeof filters === 'string' ? [filters] : filters, propList));
    const s = decodeSubAck(await this.next(T.UNSUBACK));
    assert.equal(s.id, id, 'UNSUBACK packet identifier');
    return s.codes;
  }

  /**
   * PUBLISH and, for QoS 1, wait for PUBACK; for QoS 2 run PUBREC / PUBREL / PUBCOMP.
   * Returns the PUBACK / PUBREC reason code (-1 for QoS 0).
   */
  async pub(topic: string, payload: string | Bytes = '', o: Omit<PublishOptions, 'topic' | 'payload'> = {}): Promise<number> {
    const qos = o.qos ?? 0;
    const id = qos > 0 ? (o.id ?? this.nextId()) : undefined;
    this.send(publish({ ...o, topic, payload, id }));
    if (qos === 0) return -1;
    const a = await this.ack(qos === 1 ? T.PUBACK : T.PUBREC);
    assert.equal(a.id, id, 'acknowledgement packet identifier');
    if (qos === 2 && a.reason < 0x80) {
      this.send(ack(T.PUBREL, id!));
      const c = await this.ack(T.PUBCOMP);
      assert.equal(c.id, id);
    }
    return a.reason;
  }

  /**
   * The broker refuses what was sent: DISCONNECT with one of `reasons`, nothing after it
   * [MQTT-3.14.4-1], and the connection closed [MQTT-3.14.4-2].
   */
  async expectDisconnect(reasons: number | readonly number[], ms = 2000): Promise<Disconnect> {
    const allowed = typeof reasons === 'number' ? [reasons] : reasons;
    const d = await this.disconnectFrame(ms);
    assert.ok(allowed.includes(d.reason), `DISCONNECT reason 0x${d.reason.toString(16)}, expected ${allowed.map(hex).join(' or ')}`);
    await this.expectClosed(ms);
    this.assertNothingAfter(T.DISCONNECT);
    this.checkWire();
    return d;
  }
}

export const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** A raw 5.0 client of `b` that has sent nothing yet. */
export async function peer(b: TestBroker): Promise<Peer> {
  return (await b.raw(Peer)).version(5);
}

/** Sends CONNECT and returns the peer with the CONNACK, whatever its reason code. */
export async function tryConnect(b: TestBroker, o: ConnectOptions = {}): Promise<{ c: Peer; ack: Connack }> {
  const c = await peer(b);
  c.send(connect(o));
  const ack = decodeConnack(await c.next(T.CONNACK));
  return { c, ack };
}

/** A connected 5.0 client (CONNACK 0x00 asserted). */
export async function client(b: TestBroker, o: ConnectOptions = {}): Promise<Peer & { connack: Connack }> {
  const { c, ack } = await tryConnect(b, o);
  assert.equal(ack.reason, 0, `CONNACK reason ${hex(ack.reason)}`);
  return Object.assign(c, { connack: ack });
}

/** A client-id and session expiry pair for a session that outlives its connection. */
export const lasting = (clientId: string, seconds = 60, extra: ConnectOptions = {}): ConnectOptions => ({
  clientId,
  clean: false,
  ...extra,
  props: [prop.sessionExpiry(seconds), ...(extra.props ?? [])],
});

/** Closes a peer's socket without DISCONNECT and waits until the broker has seen it. */
export async function drop(c: Peer): Promise<void> {
  await c.drop();
}

/** Sends DISCONNECT (reason 0x00 unless given) and waits until the broker has closed the connection. */
export async function leave(c: Peer, reason?: number, propList?: Bytes[]): Promise<void> {
  c.send(disconnect(reason, propList));
  await c.expectClosed();
  await c.released();
}

/** A connected client subscribed to `filter` (by default QoS 1, retain as published). */
export async function watcher(b: TestBroker, filter: string, options = subOpts(1, { rap: true })): Promise<Peer> {
  const w = await client(b);
  await w.sub(filter, options);
  return w;
}

/**
 * Starts the broker's own clock: the returned function resolves once `seconds` (whole) have passed
 * on it since this call, told by the will of a session that disconnected now with that Will Delay
 * Interval [MQTT-3.1.2-8] — so a test waits for the broker, not for a pause of its own.
 */
export async function brokerTime(b: TestBroker, seconds: number): Promise<() => Promise<void>> {
  const topic = `clock/${uniqueId()}`;
  const w = await watcher(b, topic, subOpts(0));
  const c = await client(b, lasting(uniqueId(), seconds + 60, { will: { topic, props: [prop.willDelay(seconds)] } }));
  await drop(c);
  return async () => {
    await w.publishFrame(seconds * 1000 + 3000);
  };
}

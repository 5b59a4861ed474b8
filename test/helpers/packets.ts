import { T } from './wire.js';

/**
 * MQTT packets as a list of typed fields, so the fuzzer can break one field at a time and still
 * produce the rest of a packet the broker will read that far: a length prefix that lies, a varint at
 * its limit, a property in the wrong packet, a topic with U+0000 — each inside an otherwise valid
 * packet. Encoded here from the specification (§2, §3), independently of the broker's codec.
 */

/** A field of a packet body, in wire order. */
export type Field =
  | { kind: 'u8'; value: number }
  | { kind: 'u16'; value: number }
  | { kind: 'u32'; value: number }
  /** A Variable Byte Integer; `wire` replaces its encoding (non-minimal, five bytes). */
  | { kind: 'varint'; value: number; wire?: Uint8Array }
  /** A UTF-8 string or binary data with its two-byte length; `declared` replaces the length. */
  | { kind: 'string' | 'binary'; bytes: Uint8Array; declared?: number }
  /** Bytes without a length (a payload, garbage). */
  | { kind: 'raw'; bytes: Uint8Array }
  /** A 5.0 property list with its Property Length; `declared` replaces the length. */
  | { kind: 'props'; props: Property[]; declared?: number };

export interface Property {
  id: number;
  /** The value fields (one; two for a user property). */
  value: Field[];
}

export interface PacketModel {
  /** The fixed header's first byte: type << 4 | flags. */
  header: number;
  fields: Field[];
  /** Replaces the Remaining Length (the body is sent as it is). */
  declared?: number;
  /** Replaces the Remaining Length's encoding. */
  lengthWire?: Uint8Array;
}

export type Version = 3 | 4 | 5;

/** Property identifiers (5.0 §2.2.2.2) and the type of their value. */
export const PROPERTIES: Record<number, 'u8' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair'> = {
  0x01: 'u8', // Payload Format Indicator
  0x02: 'u32', // Message Expiry Interval
  0x03: 'string', // Content Type
  0x08: 'string', // Response Topic
  0x09: 'binary', // Correlation Data
  0x0b: 'varint', // Subscription Identifier
  0x11: 'u32', // Session Expiry Interval
  0x12: 'string', // Assigned Client Identifier
  0x13: 'u16', // Server Keep Alive
  0x15: 'string', // Authentication Method
  0x16: 'binary', // Authentication Data
  0x17: 'u8', // Request Problem Information
  0x18: 'u32', // Will Delay Interval
  0x19: 'u8', // Request Response Information
  0x1a: 'string', // Response Information
  0x1c: 'string', // Server Reference
  0x1f: 'string', // Reason String
  0x21: 'u16', // Receive Maximum
  0x22: 'u16', // Topic Alias Maximum
  0x23: 'u16', // Topic Alias
  0x24: 'u8', // Maximum QoS
  0x25: 'u8', // Retain Available
  0x26: 'pair', // User Property
  0x27: 'u32', // Maximum Packet Size
  0x28: 'u8', // Wildcard Subscription Available
  0x29: 'u8', // Subscription Identifier Available
  0x2a: 'u8', // Shared Subscription Available
};

const utf8 = new TextEncoder();
export const str = (s: string | Uint8Array): Field => ({ kind: 'string', bytes: typeof s === 'string' ? utf8.encode(s) : s });
export const bin = (b: Uint8Array): Field => ({ kind: 'binary', bytes: b });
export const u8 = (value: number): Field => ({ kind: 'u8', value });
export const u16 = (value: number): Field => ({ kind: 'u16', value });

/** A property whose value is `value` (a number, a string, bytes or a [name, value] pair), typed by its id. */
export function prop(id: number, value: number | string | Uint8Array | [string, string]): Property {
  const type = PROPERTIES[id] ?? 'u8';
  switch (type) {
    case 'pair': {
      const [k, v] = Array.isArray(value) ? value : [String(value), ''];
      return { id, value: [str(k), str(v)] };
    }
    case 'string':
      return { id, value: [str(typeof value === 'number' ? String(value) : (value as string | Uint8Array))] };
    case 'binary':
      return { id, value: [bin(typeof value === 'string' ? utf8.encode(value) : value instanceof Uint8Array ? value : Uint8Array.of(Number(value) & 0xff))] };
    default:
      return { id, value: [{ kind: type, value: typeof value === 'number' ? value : 1 } as Field] };
  }
}

// ---- encoding ---------------------------------------------------------------------------

export function varintBytes(value: number): number[] {
  const out: number[] = [];
  let v = Math.max(0, Math.floor(value));
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0 && out.length < 5);
  return out;
}

function fieldBytes(f: Field, out: number[]): void {
  switch (f.kind) {
    case 'u8':
      out.push(f.value & 0xff);
      break;
    case 'u16':
      out.push((f.value >> 8) & 0xff, f.value & 0xff);
      break;
    case 'u32':
      out.push((f.value >>> 24) & 0xff, (f.value >>> 16) & 0xff, (f.value >>> 8) & 0xff, f.value & 0xff);
      break;
    case 'varint':
      out.push(...(f.wire ?? varintBytes(f.value)));
      break;
    case 'string':
    case 'binary': {
      const n = f.declared ?? f.bytes.length;
      out.push((n >> 8) & 0xff, n & 0xff);
      for (const b of f.bytes) out.push(b);
      break;
    }
    case 'raw':
      for (const b of f.bytes) out.push(b);
      break;
    case 'props': {
      const body: number[] = [];
      for (const p of f.props) {
        body.push(...varintBytes(p.id));
        for (const v of p.value) fieldBytes(v, body);
      }
      out.push(...varintBytes(f.declared ?? body.length));
      for (const b of body) out.push(b);
      break;
    }
  }
}

/** The packet's bytes: fixed header, Remaining Length (true unless overridden), body. */
export function encode(packet: PacketModel): Uint8Array {
  const body: number[] = [];
  for (const f of packet.fields) fieldBytes(f, body);
  const length = packet.lengthWire ? [...packet.lengthWire] : varintBytes(packet.declared ?? body.length);
  return Uint8Array.from([packet.header & 0xff, ...length, ...body]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- valid packets ----------------------------------------------------------------------

export interface ConnectSpec {
  version: Version;
  clientId: string;
  clean: boolean;
  keepAlive: number;
  will?: { topic: string; payload: Uint8Array; qos: number; retain: boolean; props: Property[] };
  username?: string;
  password?: Uint8Array;
  props: Property[];
}

export function connect(c: ConnectSpec): PacketModel {
  const v5 = c.version === 5;
  let flags = c.clean ? 0x02 : 0;
  if (c.will) flags |= 0x04 | (c.will.qos << 3) | (c.will.retain ? 0x20 : 0);
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined && (v5 || c.username !== undefined)) flags |= 0x40;
  const fields: Field[] = [str(c.version === 3 ? 'MQIsdp' : 'MQTT'), u8(c.version), u8(flags), u16(c.keepAlive)];
  if (v5) fields.push({ kind: 'props', props: c.props });
  fields.push(str(c.clientId));
  if (c.will) {
    if (v5) fields.push({ kind: 'props', props: c.will.props });
    fields.push(str(c.will.topic), bin(c.will.payload));
  }
  if (c.username !== undefined) fields.push(str(c.username));
  if (flags & 0x40) fields.push(bin(c.password!));
  return { header: 0x10, fields };
}

export interface PublishSpec {
  topic: string | Uint8Array;
  qos: number;
  retain: boolean;
  dup: boolean;
  packetId: number;
  payload: Uint8Array;
  props: Property[];
}

export function publish(version: Version, p: PublishSpec): PacketModel {
  const header = 0x30 | (p.dup && p.qos > 0 ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  const fields: Field[] = [str(p.topic)];
  if (p.qos > 0) fields.push(u16(p.packetId));
  if (version === 5) fields.push({ kind: 'props', props: p.props });
  fields.push({ kind: 'raw', bytes: p.payload });
  return { header, fields };
}

/** PUBACK, PUBREC, PUBREL or PUBCOMP; in 5.0 with a reason code and properties when given. */
export function ack(version: Version, type: number, packetId: number, reason?: number, props?: Property[]): PacketModel {
  const fields: Field[] = [u16(packetId)];
  if (version === 5 && reason !== undefined) {
    fields.push(u8(reason));
    if (props) fields.push({ kind: 'props', props });
  }
  return { header: (type << 4) | (type === T.PUBREL ? 2 : 0), fields };
}

export interface SubscriptionSpec {
  filter: string;
  /** The options byte: QoS, and in 5.0 No Local, Retain As Published, Retain Handling. */
  options: number;
}

export function subscribe(version: Version, packetId: number, subs: SubscriptionSpec[], props: Property[]): PacketModel {
  const fields: Field[] = [u16(packetId)];
  if (version === 5) fields.push({ kind: 'props', props });
  for (const s of subs) fields.push(str(s.filter), u8(s.options));
  return { header: 0x82, fields };
}

export function unsubscribe(version: Version, packetId: number, filters: string[], props: Property[]): PacketModel {
  const fields: Field[] = [u16(packetId)];
  if (version === 5) fields.push({ kind: 'props', props });
  for (const f of filters) fields.push(str(f));
  return { header: 0xa2, fields };
}

/** DISCONNECT or AUTH (5.0 with a reason code and properties when given), PINGREQ, or any header with no body. */
export function bare(header: number, version: Version, reason?: number, props?: Property[]): PacketModel {
  const fields: Field[] = [];
  if (version === 5 && reason !== undefined) {
    fields.push(u8(reason));
    if (props) fields.push({ kind: 'props', props });
  }
  return { header, fields };
}

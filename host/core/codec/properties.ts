import { malformed, protocolError } from './errors.js';
import { PacketType, Prop } from './constants.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

/** Decoded MQTT 5.0 properties; names follow mqtt-packet's so both sides of a test speak alike. */
export interface Properties {
  payloadFormatIndicator?: number;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Uint8Array;
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Uint8Array;
  requestProblemInformation?: number;
  willDelayInterval?: number;
  requestResponseInformation?: number;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQoS?: number;
  retainAvailable?: number;
  userProperties?: [string, string][];
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: number;
  subscriptionIdentifiersAvailable?: number;
  sharedSubscriptionAvailable?: number;
}

/** The will properties travel in CONNECT but follow PUBLISH rules; WILL stands for them in the tables. */
export const WILL = 0;

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';
interface PropSpec {
  name: keyof Properties;
  kind: Kind;
  /** Bit set of packet types (and WILL) the property may appear in (§2.2.2.2). */
  packets: number;
}

const bit = (...types: number[]): number => types.reduce((m, t) => m | (1 << t), 0);
const ACKS = [PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP];

const SPECS = new Map<number, PropSpec>([
  [Prop.PayloadFormatIndicator, { name: 'payloadFormatIndicator', kind: 'byte', packets: bit(PacketType.PUBLISH, WILL) }],
  [Prop.MessageExpiryInterval, { name: 'messageExpiryInterval', kind: 'u32', packets: bit(PacketType.PUBLISH, WILL) }],
  [Prop.ContentType, { name: 'contentType', kind: 'string', packets: bit(PacketType.PUBLISH, WILL) }],
  [Prop.ResponseTopic, { name: 'responseTopic', kind: 'string', packets: bit(PacketType.PUBLISH, WILL) }],
  [Prop.CorrelationData, { name: 'correlationData', kind: 'binary', packets: bit(PacketType.PUBLISH, WILL) }],
  [Prop.SubscriptionIdentifier, { name: 'subscriptionIdentifiers', kind: 'varint', packets: bit(PacketType.PUBLISH, PacketType.SUBSCRIBE) }],
  [Prop.SessionExpiryInterval, { name: 'sessionExpiryInterval', kind: 'u32', packets: bit(PacketType.CONNECT, PacketType.CONNACK, PacketType.DISCONNECT) }],
  [Prop.AssignedClientIdentifier, { name: 'assignedClientIdentifier', kind: 'string', packets: bit(PacketType.CONNACK) }],
  [Prop.ServerKeepAlive, { name: 'serverKeepAlive', kind: 'u16', packets: bit(PacketType.CONNACK) }],
  [Prop.AuthenticationMethod, { name: 'authenticationMethod', kind: 'string', packets: bit(PacketType.CONNECT, PacketType.CONNACK, PacketType.AUTH) }],
  [Prop.AuthenticationData, { name: 'authenticationData', kind: 'binary', packets: bit(PacketType.CONNECT, PacketType.CONNACK, PacketType.AUTH) }],
  [Prop.RequestProblemInformation, { name: 'requestProblemInformation', kind: 'byte', packets: bit(PacketType.CONNECT) }],
  [Prop.WillDelayInterval, { name: 'willDelayInterval', kind: 'u32', packets: bit(WILL) }],
  [Prop.RequestResponseInformation, { name: 'requestResponseInformation', kind: 'byte', packets: bit(PacketType.CONNECT) }],
  [Prop.ResponseInformation, { name: 'responseInformation', kind: 'string', packets: bit(PacketType.CONNACK) }],
  [Prop.ServerReference, { name: 'serverReference', kind: 'string', packets: bit(PacketType.CONNACK, PacketType.DISCONNECT) }],
  [
    Prop.ReasonString,
    {
      name: 'reasonString',
      kind: 'string',
      packets: bit(PacketType.CONNACK, ...ACKS, PacketType.SUBACK, PacketType.UNSUBACK, PacketType.DISCONNECT, PacketType.AUTH),
    },
  ],
  [Prop.ReceiveMaximum, { name: 'receiveMaximum', kind: 'u16', packets: bit(PacketType.CONNECT, PacketType.CONNACK) }],
  [Prop.TopicAliasMaximum, { name: 'topicAliasMaximum', kind: 'u16', packets: bit(PacketType.CONNECT, PacketType.CONNACK) }],
  [Prop.TopicAlias, { name: 'topicAlias', kind: 'u16', packets: bit(PacketType.PUBLISH) }],
  [Prop.MaximumQoS, { name: 'maximumQoS', kind: 'byte', packets: bit(PacketType.CONNACK) }],
  [Prop.RetainAvailable, { name: 'retainAvailable', kind: 'byte', packets: bit(PacketType.CONNACK) }],
  [Prop.UserProperty, { name: 'userProperties', kind: 'pair', packets: 0xffff }],
  [Prop.MaximumPacketSize, { name: 'maximumPacketSize', kind: 'u32', packets: bit(PacketType.CONNECT, PacketType.CONNACK) }],
  [Prop.WildcardSubscriptionAvailable, { name: 'wildcardSubscriptionAvailable', kind: 'byte', packets: bit(PacketType.CONNACK) }],
  [Prop.SubscriptionIdentifierAvailable, { name: 'subscriptionIdentifiersAvailable', kind: 'byte', packets: bit(PacketType.CONNACK) }],
  [Prop.SharedSubscriptionAvailable, { name: 'sharedSubscriptionAvailable', kind: 'byte', packets: bit(PacketType.CONNACK) }],
]);
const ID_BY_NAME = new Map([...SPECS].map(([id, spec]) => [spec.name, id]));

/** Properties a broker passes on unchanged from a PUBLISH (or will) to its subscribers [MQTT-3.3.2-17..20]. */
const FORWARDED = new Set<number>([
  Prop.PayloadFormatIndicator,
  Prop.ContentType,
  Prop.ResponseTopic,
  Prop.CorrelationData,
  Prop.UserProperty,
]);

export interface ParsedProperties {
  props: Properties;
  /** For PUBLISH and wills: the forwarded properties' encoded bytes, in the order received. */
  forward: Uint8Array | null;
}

const EMPTY: ParsedProperties = Object.freeze({ props: Object.freeze({}) as Properties, forward: null });

/** Reads the Property Length and properties of `packet` (a PacketType or WILL) at the reader's position. */
export function readProperties(r: Reader, packet: number): ParsedProperties {
  const length = r.varint('the property length');
  if (length === 0) return EMPTY;
  if (length > r.remaining) throw malformed('the property length runs past the end of the packet');
  const end = r.pos + length;
  const outer = r.end;
  r.end = end;
  const props: Properties = {};
  const forwarding = packet === PacketType.PUBLISH || packet === WILL;
  let forwardParts: Uint8Array[] | null = null;
  while (r.pos < end) {
    const start = r.pos;
    const id = r.varint('a property identifier');
    const spec = SPECS.get(id);
    if (!spec || (spec.packets & (1 << packet)) === 0) {
      throw malformed(`property 0x${id.toString(16)} is not valid in this packet`);
    }
    const value = readValue(r, spec);
    const record = props as Record<string, unknown>;
    if (spec.kind === 'pair') {
      ((record[spec.name] as [string, string][] | undefined) ?? (record[spec.name] = [] as [string, string][])).push(
        value as [string, string],
      );
    } else if (id === Prop.SubscriptionIdentifier && packet === PacketType.PUBLISH) {
      ((record[spec.name] as number[] | undefined) ?? (record[spec.name] = [] as number[])).push(value as number);
    } else {
      if (record[spec.name] !== undefined) throw protocolError(`property ${spec.name} appears more than once`);
      record[spec.name] = id === Prop.SubscriptionIdentifier ? [value] : value;
    }
    if (forwarding && FORWARDED.has(id)) (forwardParts ??= []).push(r.buf.subarray(start, r.pos));
  }
  r.end = outer;
  checkValues(props);
  return { props, forward: forwardParts ? concat(forwardParts) : null };
}

function readValue(r: Reader, spec: PropSpec): unknown {
  switch (spec.kind) {
    case 'byte':
      return r.u8(spec.name);
    case 'u16':
      return r.u16(spec.name);
    case 'u32':
      return r.u32(spec.name);
    case 'varint':
      return r.varint(spec.name);
    case 'string':
      return r.string(spec.name);
    case 'binary':
      return r.binary(spec.name).slice();
    case 'pair':
      return [r.string('a user property name'), r.string('a user property value')];
  }
}

/** Values the specification rules out, each a Protocol Error. */
function checkValues(p: Properties): void {
  const bool = (v: number | undefined, name: string): void => {
    if (v !== undefined && v !== 0 && v !== 1) throw protocolError(`${name} must be 0 or 1`);
  };
  bool(p.payloadFormatIndicator, 'payload format indicator');
  bool(p.requestProblemInformation, 'request problem information');
  bool(p.requestResponseInformation, 'request response information');
  if (p.receiveMaximum === 0) throw protocolError('receive maximum must not be 0');
  if (p.maximumPacketSize === 0) throw protocolError('maximum packet size must not be 0');
  if (p.subscriptionIdentifiers?.includes(0)) throw protocolError('subscription identifier must not be 0');
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Encodes properties (without the Property Length) in a fixed order, user properties last and in order. */
export function encodeProperties(props: Properties, w = new Writer()): Uint8Array {
  for (const [name, value] of Object.entries(props) as [keyof Properties, unknown][]) {
    if (value === undefined || name === 'userProperties') continue;
    const id = ID_BY_NAME.get(name);
    if (id === undefined) throw new TypeError(`unknown property ${name}`);
    const kind = SPECS.get(id)!.kind;
    for (const v of name === 'subscriptionIdentifiers' ? (value as number[]) : [value]) {
      w.varint(id);
      writeValue(w, kind, v);
    }
  }
  for (const pair of props.userProperties ?? []) {
    w.varint(Prop.UserProperty);
    writeValue(w, 'pair', pair);
  }
  return w.result();
}

/** Writes the Property Length and the properties (none when `props` is undefined or empty). */
export function writeProperties(w: Writer, props: Properties | undefined): Writer {
  const encoded = props ? encodeProperties(props) : undefined;
  if (!encoded || encoded.length === 0) return w.u8(0);
  return w.varint(encoded.length).bytes(encoded);
}

function writeValue(w: Writer, kind: Kind, v: unknown): void {
  switch (kind) {
    case 'byte':
      w.u8(v as number);
      break;
    case 'u16':
      w.u16(v as number);
      break;
    case 'u32':
      w.u32(v as number);
      break;
    case 'varint':
      w.varint(v as number);
      break;
    case 'string':
      w.string(v as string);
      break;
    case 'binary':
      w.binary(v as Uint8Array);
      break;
    case 'pair':
      w.string((v as [string, string])[0]).string((v as [string, string])[1]);
      break;
  }
}

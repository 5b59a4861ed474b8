import type { PacketType, ProtocolVersion } from './constants.js';
import type { Properties } from './properties.js';

export type QoS = 0 | 1 | 2;

export interface WillMessage {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  props: Properties;
  /** Encoded properties forwarded to subscribers unchanged. */
  forward: Uint8Array | null;
}

export interface ConnectPacket {
  type: PacketType.CONNECT;
  version: ProtocolVersion;
  cleanStart: boolean;
  keepAlive: number;
  clientId: string;
  will: WillMessage | null;
  username: string | undefined;
  password: Uint8Array | undefined;
  props: Properties;
}

export interface Subscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: PacketType.SUBSCRIBE;
  packetId: number;
  subscriptions: Subscription[];
  props: Properties;
}

export interface UnsubscribePacket {
  type: PacketType.UNSUBSCRIBE;
  packetId: number;
  filters: string[];
  props: Properties;
}

export interface AckPacket {
  type: PacketType.PUBACK | PacketType.PUBREC | PacketType.PUBREL | PacketType.PUBCOMP;
  packetId: number;
  reason: number;
  props: Properties;
}

export interface DisconnectPacket {
  type: PacketType.DISCONNECT;
  reason: number;
  props: Properties;
}

export interface AuthPacket {
  type: PacketType.AUTH;
  reason: number;
  props: Properties;
}

export interface PingreqPacket {
  type: PacketType.PINGREQ;
}

/** Every packet a server receives except PUBLISH, which takes its own path (codec/publish.ts). */
export type ControlPacket =
  | ConnectPacket
  | SubscribePacket
  | UnsubscribePacket
  | AckPacket
  | DisconnectPacket
  | AuthPacket
  | PingreqPacket;

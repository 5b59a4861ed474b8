import type { QoS } from './codec/packets.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Broker limits and behaviour; every field has a default (see DEFAULT_OPTIONS). */
export interface BrokerOptions {
  /** Largest packet accepted from a client, whole packet in bytes; larger ones close the connection (0x95). */
  maxPacketSize: number;
  /** Outgoing QoS 1/2 PUBLISHes awaiting acknowledgement per client (also capped by the client's Receive Maximum). */
  maxInflight: number;
  /** Incoming QoS 1/2 PUBLISHes a client may have unacknowledged; announced as Receive Maximum in 5.0. */
  receiveMaximum: number;
  /** Messages and bytes a session may queue while offline or while its window is full. */
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  /** A subscriber with more than this many bytes waiting to be written loses QoS 0 messages (counted). */
  maxWriteBufferBytes: number;
  /** Seconds; a 5.0 client asking for more (or for 0) is told this value as Server Keep Alive. 0 = no limit. */
  maxKeepAlive: number;
  /** Milliseconds a new connection has to send CONNECT. */
  connectTimeoutMs: number;
  /** Seconds; caps every session expiry interval (0xFFFFFFFF = no cap). */
  maxSessionExpiry: number;
  /** Topic aliases a 5.0 client may use towards the broker (0 disables them). */
  topicAliasMaximum: number;
  maxQoS: QoS;
  retainAvailable: boolean;
  logger: Logger;
}

export const DEFAULT_OPTIONS: BrokerOptions = {
  maxPacketSize: 16 * 1024 * 1024,
  maxInflight: 100,
  receiveMaximum: 1000,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxWriteBufferBytes: 8 * 1024 * 1024,
  maxKeepAlive: 0,
  connectTimeoutMs: 10_000,
  maxSessionExpiry: 0xffffffff,
  topicAliasMaximum: 64,
  maxQoS: 2,
  retainAvailable: true,
  logger: () => undefined,
};

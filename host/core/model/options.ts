import type { AuthMethod } from '../auth/method.js';
import type { Reason } from '../codec/constants.js';
import type { QoS } from '../codec/packets.js';

/** What a CONNECT presents for authentication (without enhanced authentication). */
export interface AuthRequest {
  clientId: string;
  username: string | undefined;
  password: Uint8Array | undefined;
  remoteAddress: string;
  version: 3 | 4 | 5;
}

/** The client a hook is asked about. */
export interface ClientInfo {
  clientId: string;
  /** The user name authentication established (see AuthDecision); undefined = anonymous. */
  username: string | undefined;
  remoteAddress: string;
}

/**
 * true = accept under the CONNECT's user name; `{ username }` = accept under the identity
 * authentication established instead (a certificate's name; undefined = anonymous); false = refuse
 * (bad user name or password); or a refusal with a 5.0 reason code.
 */
export type AuthDecision = boolean | { username: string | undefined } | { reason: Reason; message?: string };

/** Whose read access a delivery is checked against: a session's owner. */
export interface Reader {
  clientId: string;
  /** The user name the session belongs to (undefined = anonymous). */
  username: string | undefined;
}

/**
 * May a session's owner receive a message published to `topic`? Sessions with the same rules should
 * get checks with the same `shared` function: the broker asks it once per message for a run of
 * subscribers holding it, and asks `own` only when `shared` left the answer to the session.
 */
export interface ReadCheck {
  /** The answer for every session whose check has this function, or undefined when it depends on the session. */
  shared(topic: string): boolean | undefined;
  /** This session's answer. */
  own(topic: string): boolean;
}

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
  /**
   * Outgoing messages up to this many bytes (topic + payload) are copied into a connection's write
   * batch; larger ones are written by reference to their one stored copy. Where copying stops paying
   * depends on the machine (memory bandwidth against the cost of one more write buffer): bench/payload.ts measures it.
   */
  copyLimitBytes: number;
  /** Seconds; a 5.0 client asking for more (or for 0) is told this value as Server Keep Alive. 0 = no limit. */
  maxKeepAlive: number;
  /** Milliseconds a new connection has to send CONNECT. */
  connectTimeoutMs: number;
  /**
   * Bytes a connection may hold until its CONNECT is accepted: the largest CONNECT (will, password
   * and all), and what a client pipelines behind it while authentication runs (past it, reading
   * pauses until CONNACK).
   */
  maxUnauthenticatedBytes: number;
  /** Bytes all connections whose CONNECT is not accepted yet may hold together; the one going over is closed. */
  maxUnauthenticatedTotalBytes: number;
  /**
   * PUBLISH packets a connection may send per second, averaged by a token bucket that holds one
   * second's worth (bursts up to this many are fine). Over it: DISCONNECT 0x96 (5.0) or close. 0 = no limit.
   */
  maxMessagesPerSecond: number;
  /** Seconds; caps every session expiry interval (0xFFFFFFFF = no cap). */
  maxSessionExpiry: number;
  /** Topic aliases a 5.0 client may use towards the broker (0 disables them). */
  topicAliasMaximum: number;
  maxQoS: QoS;
  retainAvailable: boolean;
  /** Features a 5.0 client is told are unavailable when false (and refused if used). */
  wildcardSubscriptions: boolean;
  subscriptionIdentifiers: boolean;
  sharedSubscriptions: boolean;
  /**
   * Response Information returned to a 5.0 client that asks for it (§4.10): the prefix of the
   * response topics it may use, `{clientId}` replaced. Empty = never returned.
   */
  responseInformation: string;
  /**
   * Server redirection (§4.11): every CONNECT is answered with 0x9C Use another server (or 0x9D Server
   * moved when `permanent`) and this Server Reference, and closed.
   */
  redirect: { serverReference: string; permanent: boolean } | null;
  /** Enhanced authentication methods (5.0 AUTH), chosen by the client's Authentication Method. */
  authMethods: AuthMethod[];
  /** Checks CONNECT credentials; undefined accepts everyone. */
  authenticate: ((request: AuthRequest) => AuthDecision | Promise<AuthDecision>) | undefined;
  /**
   * May this client publish to `topic`? Denied: dropped (3.1.1) or refused with 0x87 (5.0). Also asked
   * for the will topic at CONNECT (denied: CONNACK 0x87 / 0x05) and again when the will is published
   * (denied: dropped). undefined allows all.
   */
  authorizePublish: ((client: ClientInfo, topic: string, qos: QoS, retain: boolean) => boolean | Promise<boolean>) | undefined;
  /**
   * May this client subscribe to `filter` (as sent, `$share/…` included)? Denied: SUBACK 0x80 (3.1.1)
   * or 0x87 (5.0). undefined allows all.
   */
  authorizeSubscribe: ((client: ClientInfo, filter: string, qos: QoS) => boolean | Promise<boolean>) | undefined;
  /**
   * Read access, checked for every message delivered: live, queued (again when it is sent), retained
   * on subscribe, and a shared group's pick (a member that may not read is passed over). Asked for a
   * session's check when the session gets its owner (connect, restore) and, for every session, again
   * after Broker.readAccessChanged(). undefined: no read checks.
   */
  readAccess: ((reader: Reader) => ReadCheck) | undefined;
  logger: Logger;
}

export const DEFAULT_OPTIONS: BrokerOptions = {
  maxPacketSize: 16 * 1024 * 1024,
  maxInflight: 100,
  receiveMaximum: 1000,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxWriteBufferBytes: 8 * 1024 * 1024,
  copyLimitBytes: 2048,
  maxKeepAlive: 0,
  connectTimeoutMs: 10_000,
  maxUnauthenticatedBytes: 64 * 1024,
  maxUnauthenticatedTotalBytes: 16 * 1024 * 1024,
  maxMessagesPerSecond: 0,
  maxSessionExpiry: 0xffffffff,
  topicAliasMaximum: 64,
  maxQoS: 2,
  retainAvailable: true,
  wildcardSubscriptions: true,
  subscriptionIdentifiers: true,
  sharedSubscriptions: true,
  responseInformation: 'response/{clientId}/',
  redirect: null,
  authMethods: [],
  authenticate: undefined,
  authorizePublish: undefined,
  authorizeSubscribe: undefined,
  readAccess: undefined,
  logger: () => undefined,
};

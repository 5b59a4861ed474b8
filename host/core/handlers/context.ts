import type { AuthConversation, AuthMethod } from '../auth/method.js';
import type { AckType } from '../codec/acks.js';
import type { ProtocolVersion, Reason } from '../codec/constants.js';
import type { ConnectPacket } from '../codec/packets.js';
import type { Properties } from '../codec/properties.js';
import type { Engine } from '../model/engine.js';
import type { ClientInfo } from '../model/options.js';
import type { CloseKind } from '../model/outcomes.js';
import type { ClientOutlet } from '../model/outlet.js';
import type { Session } from '../model/session.js';

/** What a 5.0 client says about itself in CONNECT (§3.1.2.11): limits the broker keeps to towards it. */
export interface ClientLimits {
  /** Receive Maximum: QoS 1/2 PUBLISHes it takes unacknowledged. */
  receiveMaximum: number;
  /** Maximum Packet Size: larger packets are not sent to it [MQTT-3.1.2-25]. */
  maxPacketSize: number;
  /** Topic Alias Maximum: how many topic aliases the broker may use towards it. */
  topicAliasMaximum: number;
  /** Request Problem Information: whether reason strings and user properties may go on acknowledgements [MQTT-3.1.2-29]. */
  problemInformation: boolean;
}

/** A client that said nothing about its limits (3.1.1, or none in its 5.0 CONNECT). */
export const NO_LIMITS: ClientLimits = Object.freeze({
  receiveMaximum: 65535,
  maxPacketSize: Number.MAX_SAFE_INTEGER,
  topicAliasMaximum: 0,
  problemInformation: true,
});

/** A CONNECT that passed validation and waits for authentication to finish. */
export interface PendingConnect {
  packet: ConnectPacket;
  clientId: string;
  assigned: boolean;
}

/**
 * What the packet handlers remember about one connection between its packets. The connection
 * creates it on first use and drops it at CONNACK while it holds nothing (`empty`): an idle client
 * that never publishes carries none.
 */
export class ClientState {
  /** CONNECT validated, waiting for authentication (handlers/connect.ts). */
  pendingConnect: PendingConnect | null = null;
  /** Enhanced authentication (5.0), kept after CONNACK for re-authentication (handlers/auth.ts). */
  auth: { method: AuthMethod; conversation: AuthConversation; busy: boolean; reauthenticating: boolean } | null = null;
  /** Incoming topic aliases (5.0): alias → topic bytes (handlers/publish.ts). */
  topicAliases: Map<number, Uint8Array> | null = null;
  /** maxMessagesPerSecond token bucket: tokens left… */
  publishTokens = 0;
  /** …and when (performance.now()) they were last topped up; -Infinity = full. */
  tokensRefilledAt = -Infinity;
  /** Incoming QoS 1 PUBLISHes whose PUBACK waits for durability: they count against Receive Maximum. */
  pendingQos1Acks = 0;

  /** Holds nothing a fresh one would not. */
  get empty(): boolean {
    return this.pendingConnect === null && this.auth === null && this.topicAliases === null && this.tokensRefilledAt === -Infinity && this.pendingQos1Acks === 0;
  }
}

/**
 * What a client connection offers the packet handlers: who the client is, its output, holding
 * packets back, and the named transitions of its life (New → Connecting → Connected → closed).
 * Handlers see nothing else of the connection (connection.ts implements this).
 */
export interface ClientContext {
  /** The broker's state: sessions, routing, retained messages, persistence. */
  readonly broker: Engine;
  /** What the handlers keep about this connection. */
  readonly state: ClientState;
  /** The protocol version of its CONNECT; 0 before. */
  readonly version: ProtocolVersion | 0;
  /** The session CONNACK bound it to; null before. */
  readonly session: Session | null;
  readonly clientId: string;
  /** Who authentication established the client is (a user name, or an enhanced authentication identity). */
  readonly username: string | undefined;
  readonly remoteAddress: string;
  /** Where its session's messages go once CONNACK binds it (the connection itself). */
  readonly outlet: ClientOutlet;
  readonly limits: ClientLimits;
  /** CONNECT arrived and CONNACK is not sent yet (authentication is running). */
  readonly connecting: boolean;
  /** Not closing or closed. */
  readonly open: boolean;
  /** Who this client is, for authorization hooks. */
  info(): ClientInfo;

  /** Queues a whole packet: it leaves with this tick's batch (dropped, counted, if larger than the client accepts). */
  send(packet: Uint8Array): void;
  /**
   * Queues the packet `build` makes of `props`; if that exceeds the client's Maximum Packet Size,
   * it is built again without Reason String and User Properties [MQTT-3.1.2-25].
   */
  sendWithProperties(build: (props: Properties | undefined) => Uint8Array, props: Properties | undefined): void;
  /** Queues a PUBACK, PUBREC, PUBREL or PUBCOMP. */
  sendAck(type: AckType, packetId: number, reason: number, props?: Properties): void;

  /**
   * Holds later packets back until `decision` settles, then runs `then` with its value and serves
   * them in order; a rejection closes the connection. `abandon` runs instead of `then` if the
   * connection is gone by then (to give back what `then` would have consumed).
   */
  holdFor<T>(decision: Promise<T>, then: (value: T) => void, abandon?: () => void): void;
  /** An incoming QoS 1/2 PUBLISH waits for the store to be acknowledged: past Receive Maximum of those, reading pauses. */
  acknowledgementPending(): void;
  acknowledgementDone(): void;

  /** CONNECT arrived (New → Connecting): its version and the client's limits apply from now on. */
  beginConnect(version: ProtocolVersion, limits: ClientLimits): void;
  /** Authentication established who the client is. */
  authenticated(username: string | undefined): void;
  /** CONNACK accepted the client (Connecting → Connected): bound to `session`, supervised by `keepAlive` seconds [MQTT-3.1.2-24]. */
  connected(session: Session, keepAlive: number): void;
  /** Closes after flushing what is queued; `kind` decides the will. */
  close(kind: CloseKind): void;
  /** 5.0: DISCONNECT with `reason` first (nothing for older versions); then closes. */
  disconnect(reason: Reason, props?: Properties): void;
  /** Closes because of bad input: the 5.0 reason code first where the specification has one. */
  fail(error: unknown): void;
}

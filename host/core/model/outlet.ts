import type { AckType } from '../codec/acks.js';
import type { Reason } from '../codec/constants.js';
import type { QoS } from '../codec/packets.js';
import type { Properties } from '../codec/properties.js';
import type { Message } from './message.js';

/**
 * Where routed messages leave the broker: a client's Connection (connection.ts, behind its session)
 * or a cluster peer's link (host/node/cluster/peer-outlet.ts, behind a trie client of its own).
 * Routing (router.ts) and delivery (delivery.ts) reach the other side only through this. Sends only
 * queue: what was queued in one event-loop turn leaves together, in order.
 */
export interface Outlet {
  /** Where the other side is, for logs and for hooks asked about a session's will later. */
  readonly remoteAddress: string;
  /**
   * Bytes not yet written — all the socket still holds, and what this turn copied for it (this turn's
   * references to stored messages only count once the socket leaves them unwritten): above
   * maxWriteBufferBytes a QoS 0 message is dropped rather than queued.
   */
  readonly backlog: number;
  /**
   * Queues a PUBLISH of `message` (packetId 0 for QoS 0; `dup` when resent). `matched` says which
   * of the other side's subscriptions matched when it matters: a client's Subscription Identifiers
   * (5.0), a peer link's share group (the interned id) of a shared pick, null otherwise. False when
   * the packet is larger than the other side accepts: nothing was queued [MQTT-3.1.2-25].
   */
  sendPublish(message: Message, qos: QoS, packetId: number, retain: boolean, dup: boolean, matched: number[] | null): boolean;
}

/**
 * A client connection's outlet, as a session's delivery uses it. Delivery keeps the QoS state
 * (packet identifiers, what is in flight, what is queued, what waits for the store) in the Session;
 * the outlet carries packets and says how much it can take.
 */
export interface ClientOutlet extends Outlet {
  /** QoS 1/2 PUBLISHes the other side takes unacknowledged: its Receive Maximum (65535 when it set none). */
  readonly receiveWindow: number;
  /** Queues a PUBACK, PUBREC, PUBREL or PUBCOMP. */
  sendAck(type: AckType, packetId: number, reason: Reason, props?: Properties): void;
  /** The session moved to another outlet (a takeover): stop serving it; a client hears DISCONNECT `reason` (5.0) and is disconnected. */
  disconnect(reason: Reason): void;
}

import type { AckType } from '../codec/acks.js';
import type { Reason } from '../codec/constants.js';
import type { QoS } from '../codec/packets.js';
import type { Properties } from '../codec/properties.js';
import type { Message } from './message.js';

/**
 * Where a session's messages leave the broker: a client's Connection (connection.ts), or another
 * broker's link. Routing and delivery (router.ts, delivery.ts) reach the other side only through
 * this. Sends only queue: what was queued in one event-loop turn leaves together, in order.
 *
 * Delivery keeps the QoS state (packet identifiers, what is in flight, what is queued, what waits
 * for the store) in the Session; an outlet only carries packets and says how much it can take.
 */
export interface Outlet {
  /** Where the other side is, for logs and for hooks asked about the session's will later. */
  readonly remoteAddress: string;
  /** QoS 1/2 PUBLISHes the other side takes unacknowledged: its Receive Maximum (65535 when it set none). */
  readonly receiveWindow: number;
  /** Bytes queued and not yet written: above maxWriteBufferBytes a QoS 0 message is dropped rather than queued. */
  readonly backlog: number;
  /**
   * Queues a PUBLISH of `message` (packetId 0 for QoS 0; `dup` when resent). False when the packet
   * is larger than the other side accepts: nothing was queued [MQTT-3.1.2-25].
   */
  sendPublish(message: Message, qos: QoS, packetId: number, retain: boolean, dup: boolean, subscriptionIds: number[] | null): boolean;
  /** Queues a PUBACK, PUBREC, PUBREL or PUBCOMP. */
  sendAck(type: AckType, packetId: number, reason: Reason, props?: Properties): void;
  /** The session moved to another outlet (a takeover): stop serving it; a client hears DISCONNECT `reason` (5.0) and is disconnected. */
  disconnect(reason: Reason): void;
}

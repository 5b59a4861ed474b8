import type { Broker } from './broker.js';
import { PacketType } from './codec/constants.js';
import type { QoS } from './codec/packets.js';
import type { Message } from './message.js';
import { Delivery, type Session } from './session.js';

/** What became of a message handed to a session. */
export const enum Handoff {
  Sent,
  Queued,
  /** Not delivered by policy: QoS 0 to an offline or far-behind client, or a full session queue. */
  Dropped,
  /** Dropped because the session queue is full (the publisher may be told 0x97 Quota exceeded). */
  QueueFull,
}

/**
 * Hands one message to one session (§4.3, §4.6): QoS 0 goes out now or not at all; QoS 1/2 go out
 * while the client's receive window has room and otherwise wait in the session queue, in order.
 * Deliveries of a persistent session are recorded in the store.
 */
export function deliver(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
): Handoff {
  const conn = session.connection;
  if (qos === 0) {
    if (conn === null) return Handoff.Dropped;
    if (conn.backlog > broker.options.maxWriteBufferBytes) {
      // A documented policy: a consumer this far behind loses QoS 0 messages, counted.
      broker.metrics.qos0Dropped++;
      return Handoff.Dropped;
    }
    sendPublish(broker, session, message, 0, retain, subscriptionIds, 0, false);
    return Handoff.Sent;
  }
  const { maxQueuedMessages, maxQueuedBytes } = broker.options;
  const direct = conn !== null && session.queue.length === 0 && session.inflight.size < windowOf(broker, session);
  if (!direct && (session.queue.length >= maxQueuedMessages || session.queuedBytes + message.length > maxQueuedBytes)) {
    broker.metrics.queueDropped++;
    broker.logRepeatable('warn', 'session queue full, message dropped', session.clientId, { client: session.clientId, queued: session.queue.length });
    return Handoff.QueueFull;
  }
  const delivery = new Delivery(session.nextSeq++, message.retainRef(), qos, retain, subscriptionIds);
  if (direct) {
    startInflight(broker, session, delivery);
    return Handoff.Sent;
  }
  session.queue.push(delivery);
  session.queuedBytes += message.length;
  broker.persistence.saveDelivery(session, delivery);
  return Handoff.Queued;
}

function windowOf(broker: Broker, session: Session): number {
  const conn = session.connection;
  const clientMax = conn ? conn.clientReceiveMaximum : 65535;
  return Math.min(clientMax, broker.options.maxInflight);
}

/** Sends a delivery with a fresh packet identifier and keeps it until acknowledged. */
function startInflight(broker: Broker, session: Session, delivery: Delivery): void {
  const message = delivery.message!;
  delivery.packetId = session.allocatePacketId();
  if (!sendPublish(broker, session, message, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, false)) {
    // Too large for the client: discarded, and treated as if its delivery had completed [MQTT-3.1.2-25].
    finish(broker, session, delivery);
    return;
  }
  session.inflight.set(delivery.packetId, delivery);
  broker.persistence.saveDelivery(session, delivery);
}

function sendPublish(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
  packetId: number,
  dup: boolean,
): boolean {
  const sent = session.connection!.sendPublish(message, qos, packetId, retain, dup, subscriptionIds);
  if (!sent) {
    broker.metrics.oversizeDropped++;
    broker.logRepeatable('info', 'message larger than the client maximum packet size was discarded', session.clientId, { client: session.clientId });
  }
  return sent;
}

/** A delivery is over (acknowledged, expired, discarded): its references and its store record go. */
export function finish(broker: Broker, session: Session, delivery: Delivery): void {
  if (delivery.packetId !== 0) session.inflight.delete(delivery.packetId);
  broker.persistence.deleteDelivery(session, delivery);
  delivery.message?.release();
  delivery.message = null;
}

/** PUBREC arrived for a QoS 2 delivery: the message itself is no longer needed, only PUBREL / PUBCOMP remain. */
export function markReleased(broker: Broker, session: Session, delivery: Delivery): void {
  if (delivery.released) return;
  delivery.released = true;
  broker.persistence.saveDelivery(session, delivery);
  delivery.message!.release();
  delivery.message = null;
}

/**
 * Moves queued messages into flight while the window allows, dropping expired ones [MQTT-3.3.2-5]
 * and those the owner may no longer read (the read rules changed while they waited).
 */
export function drainQueue(broker: Broker, session: Session): void {
  if (session.connection === null) return;
  const window = windowOf(broker, session);
  const now = performance.now();
  while (session.queue.length > 0 && session.inflight.size < window && session.connection !== null) {
    const delivery = session.queue.shift()!;
    session.queuedBytes -= delivery.message!.length;
    if (delivery.message!.expired(now)) {
      broker.metrics.expiredDropped++;
      finish(broker, session, delivery);
    } else if (!broker.mayRead(session, delivery.message!)) {
      finish(broker, session, delivery);
    } else {
      startInflight(broker, session, delivery);
    }
  }
}

/**
 * On reconnect: resend unacknowledged PUBLISHes with DUP set and PUBRELs, in their original order
 * [MQTT-4.4.0-1] — even past their expiry: their onward delivery has started (§3.3.2.3.3).
 */
export function resendInflight(broker: Broker, session: Session): void {
  const conn = session.connection!;
  for (const delivery of [...session.inflight.values()]) {
    if (delivery.released) {
      conn.sendAck(PacketType.PUBREL, delivery.packetId, 0);
    } else {
      const sent = sendPublish(broker, session, delivery.message!, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, true);
      if (!sent) finish(broker, session, delivery);
    }
  }
}

/** Drops everything the session holds for delivery (the session ended). */
export function discardDeliveries(broker: Broker, session: Session): void {
  for (const delivery of [...session.inflight.values()]) finish(broker, session, delivery);
  for (const delivery of session.queue) finish(broker, session, delivery);
  session.queue.clear();
  session.queuedBytes = 0;
}

/** Lets go of the session's message references without touching the store (broker shutdown). */
export function releaseDeliveries(session: Session): void {
  for (const delivery of session.inflight.values()) delivery.message?.release();
  for (const delivery of session.queue) delivery.message?.release();
  session.inflight.clear();
  session.queue.clear();
  session.queuedBytes = 0;
}

import type { Broker } from './broker.js';
import { PacketType, Reason } from './codec/constants.js';
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
  const tentative = broker.tentative;
  if (qos === 0) {
    if (conn === null) return Handoff.Dropped;
    if (conn.backlog > broker.options.maxWriteBufferBytes) {
      // A documented policy: a consumer this far behind loses QoS 0 messages, counted.
      broker.metrics.qos0Dropped++;
      return Handoff.Dropped;
    }
    if (tentative) tentative.holdQos0(session, retain, subscriptionIds);
    else sendQos0(broker, session, message, retain, subscriptionIds);
    return Handoff.Sent;
  }
  const { maxQueuedMessages, maxQueuedBytes } = broker.options;
  const direct = conn !== null && session.queue.length === 0 && session.inflight.size < windowOf(broker, session);
  if (!direct && (session.queue.length >= maxQueuedMessages || session.queuedBytes + message.size > maxQueuedBytes)) {
    broker.metrics.queueDropped++;
    broker.logRepeatable('warn', 'session queue full, message dropped', session.clientId, { client: session.clientId, queued: session.queue.length });
    return Handoff.QueueFull;
  }
  const delivery = new Delivery(session.nextSeq++, message.ref(), qos, retain, subscriptionIds);
  if (tentative) tentative.hold(session, delivery);
  if (direct) {
    startInflight(broker, session, delivery);
    return Handoff.Sent;
  }
  session.queue.push(delivery);
  session.queuedBytes += message.size;
  broker.persistence.saveDelivery(session, delivery);
  return Handoff.Queued;
}

function windowOf(broker: Broker, session: Session): number {
  const conn = session.connection;
  const clientMax = conn ? conn.clientReceiveMaximum : 65535;
  return Math.min(clientMax, broker.options.maxInflight);
}

/**
 * Gives a delivery a fresh packet identifier and keeps it until acknowledged. It is sent once nothing
 * holds it: for a stored session, once its record with that identifier is durable, so that after a
 * crash the broker never reuses an identifier the client may still hold [MQTT-4.3.3-9].
 */
function startInflight(broker: Broker, session: Session, delivery: Delivery): void {
  delivery.packetId = session.allocatePacketId();
  session.inflight.set(delivery.packetId, delivery);
  broker.persistence.saveDelivery(session, delivery);
  if (delivery.persisted) holdUntilDurable(broker, session, delivery);
  if (delivery.holds === 0 && !sendInflight(broker, session, delivery)) finish(broker, session, delivery);
}

/**
 * Holds a stored delivery until its latest state is durable. A write that fails cancels a delivery
 * whose record was never written (its publisher is refused, so nobody may receive it); one already
 * stored waits for the retry instead.
 */
function holdUntilDurable(broker: Broker, session: Session, delivery: Delivery): void {
  delivery.holds++;
  broker.persistence.whenDurable((error) => {
    if (delivery.done) return;
    if (error) {
      if (!broker.persistence.isDurable(delivery)) cancel(broker, session, delivery);
      else broker.persistence.whenDurable(retry);
      return;
    }
    release(broker, session, delivery);
  });
  const retry = (error?: Error): void => {
    if (delivery.done) return;
    if (error) broker.persistence.whenDurable(retry);
    else release(broker, session, delivery);
  };
}

/** One hold on a delivery ends: with none left, an in-flight delivery goes out (or, after PUBREC, its PUBREL). */
export function release(broker: Broker, session: Session, delivery: Delivery): void {
  if (--delivery.holds > 0 || delivery.done || delivery.packetId === 0 || session.connection === null) return;
  if (delivery.released) {
    session.connection.sendAck(PacketType.PUBREL, delivery.packetId, Reason.Success);
  } else if (!sendInflight(broker, session, delivery)) {
    finish(broker, session, delivery);
    drainQueue(broker, session);
  }
}

/**
 * Sends an in-flight delivery if its client is connected. False when it is too large for the client:
 * the caller then treats it as if its delivery had completed [MQTT-3.1.2-25].
 */
function sendInflight(broker: Broker, session: Session, delivery: Delivery): boolean {
  if (session.connection === null) return true;
  return sendPublish(broker, session, delivery.message!, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, false);
}

/** A delivery that may not happen (its record could not be written): it goes without a trace. */
export function cancel(broker: Broker, session: Session, delivery: Delivery): void {
  if (delivery.done) return;
  if (delivery.packetId === 0 && session.queue.remove(delivery)) session.queuedBytes -= delivery.message!.size;
  finish(broker, session, delivery);
  drainQueue(broker, session);
}

export function sendQos0(broker: Broker, session: Session, message: Message, retain: boolean, subscriptionIds: number[] | null): void {
  sendPublish(broker, session, message, 0, retain, subscriptionIds, 0, false);
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
  delivery.done = true;
  if (delivery.packetId !== 0) session.inflight.delete(delivery.packetId);
  broker.persistence.deleteDelivery(session, delivery);
  delivery.message?.unref();
  delivery.message = null;
}

/**
 * PUBREC arrived for a QoS 2 delivery: the message itself is no longer needed, only PUBREL / PUBCOMP
 * remain. PUBREL goes once that is durable: after it the client forgets the packet identifier, so a
 * broker that crashed and resent the PUBLISH would deliver it twice [MQTT-4.3.3-9].
 */
export function markReleased(broker: Broker, session: Session, delivery: Delivery): void {
  if (!delivery.released) {
    delivery.released = true;
    broker.persistence.saveDelivery(session, delivery);
    delivery.message!.unref();
    delivery.message = null;
    if (delivery.persisted) holdUntilDurable(broker, session, delivery);
  }
  if (delivery.holds === 0) session.connection?.sendAck(PacketType.PUBREL, delivery.packetId, Reason.Success);
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
    session.queuedBytes -= delivery.message!.size;
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
    // A held one goes when its hold ends.
    if (delivery.holds > 0) continue;
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
  for (const delivery of session.inflight.values()) delivery.message?.unref();
  for (const delivery of session.queue) delivery.message?.unref();
  session.inflight.clear();
  session.queue.clear();
  session.queuedBytes = 0;
}

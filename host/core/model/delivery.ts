import { PacketType, Reason } from '../codec/constants.js';
import type { QoS } from '../codec/packets.js';
import type { Engine } from './engine.js';
import type { Message } from './message.js';
import { Handoff } from './outcomes.js';
import { Delivery, type Session } from './session.js';

/**
 * Hands one message to one session (§4.3, §4.6): QoS 0 goes out now or not at all; QoS 1/2 go out
 * while the client's receive window has room and otherwise wait in the session queue, in order.
 * Deliveries of a persistent session are recorded in the store.
 */
export function deliver(
  engine: Engine,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
): Handoff {
  const outlet = session.outlet;
  if (qos === 0) {
    if (outlet === null) return Handoff.Dropped;
    if (outlet.backlog > engine.options.maxWriteBufferBytes) {
      // A documented policy: a consumer this far behind loses QoS 0 messages, counted.
      engine.metrics.qos0Dropped++;
      return Handoff.Dropped;
    }
    if (session.waitingSends === 0) {
      sendPublish(engine, session, message, 0, retain, subscriptionIds, 0, false);
      return Handoff.Sent;
    }
    message.ref();
    session.waitingSends++;
    engine.persistence.whenWritten(() => {
      session.waitingSends--;
      if (session.outlet !== null) sendPublish(engine, session, message, 0, retain, subscriptionIds, 0, false);
      message.unref();
    });
    return Handoff.Sent;
  }
  const { maxQueuedMessages, maxQueuedBytes } = engine.options;
  const direct = outlet !== null && session.queueLength === 0 && session.inflightCount < windowOf(engine, session);
  if (!direct && (session.queueLength >= maxQueuedMessages || session.queuedBytes + message.size > maxQueuedBytes)) {
    engine.metrics.queueDropped++;
    engine.logRepeatable('warn', 'session queue full, message dropped', session.clientId, { client: session.clientId, queued: session.queueLength });
    return Handoff.QueueFull;
  }
  const delivery = new Delivery(session.nextSeq++, message.ref(), qos, retain, subscriptionIds);
  if (direct) {
    startInflight(engine, session, delivery);
    return Handoff.Sent;
  }
  session.queue.push(delivery);
  session.queuedBytes += message.size;
  engine.persistence.saveDelivery(session, delivery);
  return Handoff.Queued;
}

function windowOf(engine: Engine, session: Session): number {
  const outlet = session.outlet;
  return Math.min(outlet ? outlet.receiveWindow : 65535, engine.options.maxInflight);
}

/**
 * Gives a delivery a fresh packet identifier and keeps it until acknowledged. A QoS 2 delivery of a
 * stored session is sent once its record with that identifier is durable: a broker that crashed
 * before and sent the message again under another identifier would have it delivered twice
 * [MQTT-4.3.3-9]. A QoS 1 delivery goes at once unless an earlier send waits (order) — after a crash
 * its publisher, not yet acknowledged, sends it again, and QoS 1 allows the duplicate; its record is
 * then mostly deleted before it is ever written.
 */
function startInflight(engine: Engine, session: Session, delivery: Delivery): void {
  delivery.packetId = session.allocatePacketId();
  session.inflight.set(delivery.packetId, delivery);
  engine.persistence.saveDelivery(session, delivery);
  if (engine.persistence.isStored(delivery) && (delivery.qos === 2 || session.waitingSends > 0)) holdUntilDurable(engine, session, delivery);
  if (delivery.holds === 0 && !sendInflight(engine, session, delivery)) finish(engine, session, delivery);
}

/** Holds a stored delivery until its latest state is durable; a failed write makes it wait for the retry. */
function holdUntilDurable(engine: Engine, session: Session, delivery: Delivery): void {
  delivery.holds++;
  session.waitingSends++;
  engine.persistence.whenWritten(() => {
    session.waitingSends--;
    if (!delivery.done) release(engine, session, delivery);
  });
}

/** One hold on a delivery ends: with none left, an in-flight delivery goes out (or, after PUBREC, its PUBREL). */
export function release(engine: Engine, session: Session, delivery: Delivery): void {
  if (--delivery.holds > 0 || delivery.done || delivery.packetId === 0 || session.outlet === null) return;
  if (delivery.released) {
    session.outlet.sendAck(PacketType.PUBREL, delivery.packetId, Reason.Success);
  } else if (!sendInflight(engine, session, delivery)) {
    finish(engine, session, delivery);
    drainQueue(engine, session);
  }
}

/**
 * Sends an in-flight delivery if its client is connected. False when it is too large for the client:
 * the caller then treats it as if its delivery had completed [MQTT-3.1.2-25].
 */
function sendInflight(engine: Engine, session: Session, delivery: Delivery): boolean {
  if (session.outlet === null) return true;
  return sendPublish(engine, session, delivery.message!, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, false);
}

function sendPublish(
  engine: Engine,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
  packetId: number,
  dup: boolean,
): boolean {
  const sent = session.outlet!.sendPublish(message, qos, packetId, retain, dup, subscriptionIds);
  if (!sent) {
    engine.metrics.oversizeDropped++;
    engine.logRepeatable('info', 'message larger than the client maximum packet size was discarded', session.clientId, { client: session.clientId });
  }
  return sent;
}

/** A delivery is over (acknowledged, expired, discarded): its references and its store record go. */
export function finish(engine: Engine, session: Session, delivery: Delivery): void {
  delivery.done = true;
  if (delivery.packetId !== 0) session.inflight.delete(delivery.packetId);
  engine.persistence.deleteDelivery(delivery);
  delivery.message?.unref();
  delivery.message = null;
}

/**
 * PUBREC arrived for a QoS 2 delivery: the message itself is no longer needed, only PUBREL / PUBCOMP
 * remain. PUBREL goes once that is durable: after it the client forgets the packet identifier, so a
 * broker that crashed and resent the PUBLISH would deliver it twice [MQTT-4.3.3-9].
 */
export function markReleased(engine: Engine, session: Session, delivery: Delivery): void {
  if (!delivery.released) {
    delivery.released = true;
    engine.persistence.saveDelivery(session, delivery);
    delivery.message!.unref();
    delivery.message = null;
    if (engine.persistence.isStored(delivery)) holdUntilDurable(engine, session, delivery);
  }
  if (delivery.holds === 0) session.outlet?.sendAck(PacketType.PUBREL, delivery.packetId, Reason.Success);
}

/**
 * Moves queued messages into flight while the window allows, dropping expired ones [MQTT-3.3.2-5]
 * and those the owner may no longer read (the read rules changed while they waited).
 */
export function drainQueue(engine: Engine, session: Session): void {
  if (session.outlet === null) return;
  const window = windowOf(engine, session);
  const now = performance.now();
  while (session.queueLength > 0 && session.inflightCount < window && session.outlet !== null) {
    const delivery = session.queue.shift()!;
    session.queuedBytes -= delivery.message!.size;
    if (delivery.message!.expired(now)) {
      engine.metrics.expiredDropped++;
      finish(engine, session, delivery);
    } else if (!engine.router.mayRead(session, delivery.message!)) {
      finish(engine, session, delivery);
    } else {
      startInflight(engine, session, delivery);
    }
  }
}

/**
 * On reconnect: resend unacknowledged PUBLISHes with DUP set and PUBRELs, in their original order
 * [MQTT-4.4.0-1] — even past their expiry: their onward delivery has started (§3.3.2.3.3).
 */
export function resendInflight(engine: Engine, session: Session): void {
  const outlet = session.outlet!;
  for (const delivery of session.inflightList()) {
    // A held one goes when its hold ends.
    if (delivery.holds > 0) continue;
    if (delivery.released) {
      outlet.sendAck(PacketType.PUBREL, delivery.packetId, 0);
    } else {
      const sent = sendPublish(engine, session, delivery.message!, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.packetId, true);
      if (!sent) finish(engine, session, delivery);
    }
  }
}

/** Drops everything the session holds for delivery (the session ended). */
export function discardDeliveries(engine: Engine, session: Session): void {
  for (const delivery of session.inflightList()) finish(engine, session, delivery);
  if (session.queueLength > 0) {
    for (const delivery of session.queue) finish(engine, session, delivery);
    session.queue.clear();
  }
  session.queuedBytes = 0;
}

/** Lets go of the session's message references without touching the store (broker shutdown). */
export function releaseDeliveries(session: Session): void {
  for (const delivery of session.inflightList()) delivery.message?.unref();
  if (session.inflightCount > 0) session.inflight.clear();
  if (session.queueLength > 0) {
    for (const delivery of session.queue) delivery.message?.unref();
    session.queue.clear();
  }
  session.queuedBytes = 0;
}

import { PacketType } from './codec/constants.js';
import type { QoS } from './codec/packets.js';
import type { Broker } from './broker.js';
import type { Message } from './message.js';
import type { Session } from './session.js';

/**
 * Hands one message to one session (§4.3, §4.6): QoS 0 goes out now or not at all; QoS 1/2 go out
 * while the client's receive window has room and otherwise wait in the session queue, in order.
 */
export function deliver(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
): void {
  const conn = session.connection;
  if (qos === 0) {
    if (conn === null) return;
    if (conn.backlog > broker.options.maxWriteBufferBytes) {
      // A documented policy: a consumer this far behind loses QoS 0 messages, counted.
      broker.metrics.qos0Dropped++;
      return;
    }
    sendNow(broker, session, message, 0, retain, subscriptionIds, 0, false);
    return;
  }
  if (conn !== null && session.queue.length === 0 && session.inflight.size < windowOf(broker, session)) {
    startInflight(broker, session, message, qos, retain, subscriptionIds);
    return;
  }
  enqueue(broker, session, message, qos, retain, subscriptionIds);
}

function windowOf(broker: Broker, session: Session): number {
  const conn = session.connection;
  const clientMax = conn ? conn.clientReceiveMaximum : 65535;
  return Math.min(clientMax, broker.options.maxInflight);
}

function enqueue(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
): void {
  const { maxQueuedMessages, maxQueuedBytes } = broker.options;
  if (session.queue.length >= maxQueuedMessages || session.queuedBytes + message.length > maxQueuedBytes) {
    broker.metrics.queueDropped++;
    broker.log('warn', 'session queue full, message dropped', { client: session.clientId, queued: session.queue.length });
    return;
  }
  session.queue.push({ message: message.retainRef(), qos, retain, subscriptionIds });
  session.queuedBytes += message.length;
}

function startInflight(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
): void {
  const packetId = session.allocatePacketId();
  const sent = sendNow(broker, session, message, qos, retain, subscriptionIds, packetId, false);
  // Too large for the client: discarded, and treated as if its delivery had completed [MQTT-3.1.2-25].
  if (!sent) return;
  session.inflight.set(packetId, { message: message.retainRef(), qos, retain, subscriptionIds, released: false });
}

function sendNow(
  broker: Broker,
  session: Session,
  message: Message,
  qos: QoS,
  retain: boolean,
  subscriptionIds: number[] | null,
  packetId: number,
  dup: boolean,
): boolean {
  const conn = session.connection!;
  const sent = conn.sendPublish(message, qos, packetId, retain, dup, subscriptionIds);
  if (!sent) {
    broker.metrics.oversizeDropped++;
    broker.log('info', 'message larger than the client maximum packet size was discarded', { client: session.clientId });
  }
  return sent;
}

/** Moves queued messages into flight while the window allows, dropping expired ones [MQTT-3.3.2-5]. */
export function drainQueue(broker: Broker, session: Session): void {
  if (session.connection === null) return;
  const window = windowOf(broker, session);
  const now = performance.now();
  while (session.queue.length > 0 && session.inflight.size < window && session.connection !== null) {
    const item = session.queue.shift()!;
    session.queuedBytes -= item.message.length;
    if (!item.message.expired(now)) {
      startInflight(broker, session, item.message, item.qos, item.retain, item.subscriptionIds);
    } else {
      broker.metrics.expiredDropped++;
    }
    item.message.release();
  }
}

/** On reconnect: resend unacknowledged PUBLISHes with DUP set and PUBRELs, in their original order [MQTT-4.4.0-1]. */
export function resendInflight(broker: Broker, session: Session): void {
  const conn = session.connection!;
  const now = performance.now();
  for (const [packetId, item] of session.inflight) {
    if (item.released) {
      conn.sendAck(PacketType.PUBREL, packetId, 0);
    } else if (item.message!.expired(now)) {
      session.inflight.delete(packetId);
      item.message!.release();
      broker.metrics.expiredDropped++;
    } else {
      sendNow(broker, session, item.message!, item.qos, item.retain, item.subscriptionIds, packetId, true);
    }
  }
}


/** Drops everything the session holds for delivery (the session ended). */
export function discardDeliveries(session: Session): void {
  for (const item of session.inflight.values()) item.message?.release();
  session.inflight.clear();
  for (const item of session.queue) item.message.release();
  session.queue.length = 0;
  session.queuedBytes = 0;
}

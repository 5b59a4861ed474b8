import { PacketType, Reason } from '../codec/constants.js';
import { drainQueue, finish, markReleased } from '../model/delivery.js';
import type { ClientContext } from './context.js';

/**
 * The acknowledgements of QoS 1/2 flows (§4.3): PUBACK, PUBREC and PUBCOMP for messages the broker
 * sent, PUBREL for a QoS 2 message the client sent. Each takes the packet identifier and the 5.0
 * reason code (0 when absent), so the common two-byte form needs no decoded packet object.
 */
export function handleAck(conn: ClientContext, type: number, packetId: number, reason: number): void {
  switch (type) {
    case PacketType.PUBACK:
      return puback(conn, packetId);
    case PacketType.PUBREC:
      return pubrec(conn, packetId, reason);
    case PacketType.PUBREL:
      return pubrel(conn, packetId);
    case PacketType.PUBCOMP:
      return pubcomp(conn, packetId);
  }
}

function puback(conn: ClientContext, packetId: number): void {
  const session = conn.session!;
  const delivery = session.inflight.get(packetId);
  if (delivery?.qos !== 1) return;
  finish(conn.broker, session, delivery);
  drainQueue(conn.broker, session);
}

function pubrec(conn: ClientContext, packetId: number, reason: number): void {
  const session = conn.session!;
  const delivery = session.inflight.get(packetId);
  if (!delivery || delivery.qos !== 2) {
    conn.sendAck(PacketType.PUBREL, packetId, Reason.PacketIdentifierNotFound);
    return;
  }
  if (reason >= 0x80) {
    // A PUBREC with an error code ends the exchange: no PUBREL follows (§4.3.3).
    finish(conn.broker, session, delivery);
    drainQueue(conn.broker, session);
    return;
  }
  markReleased(conn.broker, session, delivery);
}

function pubcomp(conn: ClientContext, packetId: number): void {
  const session = conn.session!;
  const delivery = session.inflight.get(packetId);
  if (!delivery?.released) return;
  finish(conn.broker, session, delivery);
  drainQueue(conn.broker, session);
}

/**
 * PUBCOMP waits until forgetting the packet identifier is durable: after PUBCOMP the client may use it
 * for a new message, which a broker that crashed and still remembered it would drop as a duplicate
 * [MQTT-4.3.3-12]. (In order with the acknowledgements still waiting for their commit.)
 */
function pubrel(conn: ClientContext, packetId: number): void {
  const session = conn.session!;
  const known = session.forgetIncoming(packetId);
  if (known) conn.broker.cluster?.released(session.clientId, packetId);
  const reason = known ? Reason.Success : Reason.PacketIdentifierNotFound;
  conn.broker.persistence.afterCommit(session, () => {
    if (conn.open) conn.sendAck(PacketType.PUBCOMP, packetId, reason);
  });
}

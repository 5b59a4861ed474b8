import { PacketType, Reason } from '../codec/constants.js';
import * as generate from '../codec/generate.js';
import type { AckPacket } from '../codec/packets.js';
import type { Connection } from '../connection.js';
import { drainQueue } from '../delivery.js';

/**
 * PUBACK / PUBREC / PUBCOMP for messages the broker sent (§4.3.2, §4.3.3), and PUBREL for a QoS 2
 * message the client sent.
 */
export function handleAck(conn: Connection, packet: AckPacket): void {
  const broker = conn.broker;
  const session = conn.session!;
  const version = conn.version as 3 | 4 | 5;
  const id = packet.packetId;
  switch (packet.type) {
    case PacketType.PUBACK: {
      const item = session.inflight.get(id);
      if (item?.qos !== 1) return;
      session.inflight.delete(id);
      item.message!.release();
      drainQueue(broker, session);
      return;
    }
    case PacketType.PUBREC: {
      const item = session.inflight.get(id);
      if (!item || item.qos !== 2) {
        conn.sendBytes(generate.ack(PacketType.PUBREL, version, id, Reason.PacketIdentifierNotFound));
        return;
      }
      if (!item.released) {
        item.message!.release();
        item.message = null;
        item.released = true;
      }
      if (packet.reason >= 0x80) {
        // A failing PUBREC ends the exchange: no PUBREL follows [MQTT-4.3.3-4 note].
        session.inflight.delete(id);
        drainQueue(broker, session);
        return;
      }
      conn.sendBytes(generate.ack(PacketType.PUBREL, version, id));
      return;
    }
    case PacketType.PUBCOMP: {
      const item = session.inflight.get(id);
      if (!item?.released) return;
      session.inflight.delete(id);
      drainQueue(broker, session);
      return;
    }
    case PacketType.PUBREL: {
      const known = session.incomingQos2.delete(id);
      conn.sendBytes(generate.ack(PacketType.PUBCOMP, version, id, known ? 0 : Reason.PacketIdentifierNotFound));
      return;
    }
  }
}

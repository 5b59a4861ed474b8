import { Reason } from '../codec/constants.js';
import * as generate from '../codec/generate.js';
import type { UnsubscribePacket } from '../codec/packets.js';
import { malformed } from '../codec/errors.js';
import { parseFilter } from '../model/topics.js';
import type { ClientContext } from './context.js';

/** UNSUBSCRIBE (§3.10): removes each filter that exists; one UNSUBACK answers all [MQTT-3.10.4-4], [MQTT-3.10.4-5]. */
export function handleUnsubscribe(conn: ClientContext, packet: UnsubscribePacket): void {
  const broker = conn.broker;
  const session = conn.session!;
  const codes = packet.filters.map((filter) => {
    const parsed = parseFilter(broker.core, filter);
    if (!parsed) {
      // 3.1.1 has no way to say so in UNSUBACK: an invalid filter is a protocol violation [MQTT-4.8.0-1].
      if (conn.version !== 5) throw malformed(`UNSUBSCRIBE with an invalid topic filter ${JSON.stringify(filter)}`);
      return Reason.TopicFilterInvalid;
    }
    return broker.router.unsubscribe(session, parsed, filter) ? Reason.Success : Reason.NoSubscriptionExisted;
  });
  broker.persistence.saveSession(session);
  // Durable first, as for SUBACK: a subscription the client was told is gone must not come back after a crash.
  broker.persistence.afterCommit(session, () => {
    if (conn.open) conn.send(generate.unsuback(conn.version as 3 | 4 | 5, packet.packetId, codes));
  });
}

import type { Broker } from '../../core/broker.js';
import { messageFromStore, willFromStore } from '../../core/model/restore.js';
import type { Session, SessionSubscription } from '../../core/model/session.js';
import { FrameReader, FrameType, FrameWriter } from './frame.js';
import { NO_GROUPS, writeEntry } from './forward-codec.js';
import type { ReplicaSession } from './replica-store.js';
import { takeIn, type DeliveryHeader, type SessionHeader } from './session-transfer.js';

/**
 * Installs a replicated session as a live one on this node, as a hand-over from its owner would
 * (the records become this node's own, under its own message ids), disconnected from now on: the
 * owner's connection died with it, so a will it left is scheduled.
 */
export function promoteReplica(broker: Broker, clientId: string, replica: ReplicaSession): Session {
  const stored = replica.session;
  const header: SessionHeader = {
    version: stored.version,
    expiryInterval: stored.expiryInterval,
    owner: stored.owner ?? null,
    ownerKnown: stored.owner !== undefined,
    // takeIn parses each filter again; topicFilter and group come from that.
    subscriptions: stored.subscriptions as SessionSubscription[],
    incomingQos2: replica.incomingQos2,
  };
  const w = new FrameWriter(FrameType.TakeoverReply).json(header);
  const countAt = w.reserve(4);
  let count = 0;
  const now = performance.now();
  const wallNow = Date.now();
  for (const d of replica.deliveries) {
    const body = d.released ? null : (d.message ?? replica.bodies.get(d.messageId));
    // A body that expired (or is missing) ends its delivery, as at a restart.
    if (!d.released && (!body || (body.expiresAt !== 0 && body.expiresAt <= wallNow))) continue;
    const dh: DeliveryHeader = { packetId: d.packetId, released: d.released, qos: d.qos as 1 | 2, retain: d.retain, subscriptionIds: d.subscriptionIds };
    w.json(dh);
    count++;
    if (!body) continue;
    const message = messageFromStore(broker.core, body);
    if (!message) throw new Error('no arena room for a replicated session');
    writeEntry(w, 0, message, { plain: false, groups: NO_GROUPS, stamp: null }, now);
    message.unref();
  }
  w.target().writeUInt32BE(count, countAt);
  const session = takeIn(broker, clientId, new FrameReader(w.finish()));
  if (stored.will) session.will = willFromStore(stored.will);
  broker.adoptDisconnected(session);
  return session;
}

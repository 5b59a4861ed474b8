import type { Broker } from '../../core/broker.js';
import { Reason } from '../../core/codec/constants.js';
import { Delivery, type Session, type SessionSubscription } from '../../core/model/session.js';
import { parseFilter } from '../../core/model/topics.js';
import { publishWill } from '../../core/model/will.js';
import { type FrameReader, type FrameWriter, LinkProtocolError } from './frame.js';
import { EntryReader, NO_GROUPS, writeEntry } from './forward-codec.js';

/** What a node asking for a session says about the connection that wants it. */
export interface TakeoverRequest {
  clientId: string;
  username: string | undefined;
  /** The new connection's Clean Start: the session is discarded rather than moved. */
  cleanStart: boolean;
  version: number;
  /** The revision the asking node's takeover wrote to the session's key. */
  revision: string;
}

export const enum TakeoverStatus {
  /** No session here: the asking node starts a new one. */
  None = 0,
  /** The session follows; the old owner keeps its copy, offline, until the new owner settles the hand-over. */
  Moved = 1,
  /** It belongs to another user: the CONNECT is refused (0x87) and nothing changes. */
  Denied = 2,
  /** Clean Start: the session here ended (its will published as a local takeover would). */
  Discarded = 3,
}

export interface SessionHeader {
  version: number;
  expiryInterval: number;
  owner: string | null;
  ownerKnown: boolean;
  subscriptions: SessionSubscription[];
  incomingQos2: number[];
}

export interface DeliveryHeader {
  packetId: number;
  released: boolean;
  qos: 1 | 2;
  retain: boolean;
  subscriptionIds: number[] | null;
}

/**
 * Gives up the session for another node: the connection holding it is closed (5.0: 0x8E), the will
 * goes as it would on a takeover within one node, and — unless Clean Start discards it — its
 * subscriptions, in-flight and queued messages (in order) and QoS 2 packet identifiers are written
 * to `w`. A discarded session is gone; a moved one stays here, offline, until the caller ends it
 * (the new owner has it durable) or takes it back (the new owner lost it).
 */
export function handOver(broker: Broker, request: Omit<TakeoverRequest, 'revision'>, w: FrameWriter): TakeoverStatus {
  const session = broker.sessions.get(request.clientId);
  if (!session) return TakeoverStatus.None;
  if (session.ownerKnown && session.owner !== request.username) return TakeoverStatus.Denied;
  const old = session.outlet;
  if (old) {
    broker.metrics.sessionTakeovers++;
    const delayed = request.version === 5 && !request.cleanStart && (session.will?.props.willDelayInterval ?? 0) > 0;
    if (!delayed) publishWill(broker, session);
    session.will = null;
    session.outlet = null;
    old.disconnect(Reason.SessionTakenOver);
  }
  // A will pending from an earlier disconnection is cancelled by the client coming back [MQTT-3.1.3-9].
  session.will = null;
  session.willAt = Infinity;
  if (request.cleanStart) {
    broker.endSession(session);
    return TakeoverStatus.Discarded;
  }
  const header: SessionHeader = {
    version: session.version,
    expiryInterval: session.expiryInterval,
    owner: session.owner ?? null,
    ownerKnown: session.ownerKnown,
    subscriptions: [...session.subscriptions.values()],
    incomingQos2: [...session.incomingQos2],
  };
  w.json(header);
  const deliveries = [...session.inflightList(), ...session.queue];
  w.u32(deliveries.length);
  const now = performance.now();
  for (const d of deliveries) {
    const dh: DeliveryHeader = { packetId: d.packetId, released: d.released, qos: d.qos as 1 | 2, retain: d.retain, subscriptionIds: d.subscriptionIds };
    w.json(dh);
    if (!d.released) writeEntry(w, 0, d.message!, { plain: false, groups: NO_GROUPS, stamp: null }, now);
  }
  return TakeoverStatus.Moved;
}

/** Installs a session handed over by another node; its messages are stored here as they arrive. */
export function takeIn(broker: Broker, clientId: string, r: FrameReader): Session {
  const header = r.json<SessionHeader>();
  const existing = broker.sessions.get(clientId);
  if (existing) broker.endSession(existing);
  const session = broker.createSession(clientId);
  if (header.ownerKnown) broker.setOwner(session, header.owner ?? undefined);
  else session.ownerKnown = false;
  session.version = header.version as Session['version'];
  session.expiryInterval = header.expiryInterval;
  for (const sub of header.subscriptions) {
    const parsed = parseFilter(broker.core, sub.filter);
    if (!parsed) throw new LinkProtocolError(`handed-over subscription ${JSON.stringify(sub.filter)} is not a valid filter`);
    broker.router.subscribe(session, parsed, sub, sub.subscriptionId);
  }
  broker.router.setOnline(session, false);
  broker.persistence.saveSession(session);
  for (const packetId of header.incomingQos2) session.rememberIncoming(packetId);
  const entry = new EntryReader(r);
  for (let n = r.u32(); n > 0; n--) {
    const dh = r.json<DeliveryHeader>();
    if (!dh.released) entry.next();
    const message = dh.released ? null : entry.message(broker.core);
    if (!dh.released && !message) throw new Error('no arena room for a handed-over session');
    const delivery = new Delivery(session.nextSeq++, message, dh.qos, dh.retain, dh.subscriptionIds);
    delivery.packetId = dh.packetId;
    delivery.released = dh.released;
    if (dh.packetId !== 0) session.inflight.set(dh.packetId, delivery);
    else {
      session.queue.push(delivery);
      session.queuedBytes += message!.size;
    }
    broker.persistence.saveDelivery(session, delivery);
  }
  session.disconnectedAt = performance.now();
  return session;
}

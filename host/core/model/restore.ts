import type { QoS, WillMessage } from '../codec/packets.js';
import type { Core } from '../wasm/core.js';
import type { Engine } from './engine.js';
import { Message } from './message.js';
import { Delivery, NEVER_EXPIRES, type Session } from './session.js';
import type { StoredDelivery, StoredMessage, StoredSession, StoredWill } from './store.js';
import { parseFilter } from './topics.js';
import { publishWill, willDue } from './will.js';

/**
 * Opens the engine's store and rebuilds the arena, the trie and the sessions from it. Sessions
 * that expired while the broker was down are ended and their pending wills published, once every
 * session is back to receive them.
 */
export async function restore(engine: Engine): Promise<void> {
  const persistence = engine.persistence;
  const store = persistence.store;
  await store.open();
  const state = await store.load();
  for (const [name, value] of state.marks) persistence.marks.set(name, value);
  const endedWithWill: Session[] = [];
  const now = Date.now();
  for (const stored of state.retained) {
    if (stored.expiresAt !== 0 && stored.expiresAt <= now) {
      persistence.deleteRetained(stored.topic);
      continue;
    }
    const message = messageFromStore(engine.core, stored);
    if (!message) throw new Error('the arena cap is too small for the retained messages in the store');
    engine.retained.restore(message);
    message.unref();
  }
  const deliveries = new Map<string, StoredDelivery[]>();
  // Bodies travel as their own records or inside the record of their (then) only holder.
  const bodies = new Map(state.messages);
  const inlineIn = new Map<string, StoredDelivery>();
  for (const d of state.deliveries) {
    (deliveries.get(d.clientId) ?? deliveries.set(d.clientId, []).get(d.clientId)!).push(d);
    if (d.message) {
      bodies.set(d.messageId, d.message);
      inlineIn.set(d.messageId, d);
    }
  }
  persistence.continueIdsAfter(bodies.keys());
  const messages = new Map<string, Message>();
  const restored = new Map<StoredDelivery, Delivery>();
  for (const stored of state.sessions) {
    const session = restoreSession(engine, stored, now, endedWithWill);
    if (!session) continue;
    restoreDeliveries(engine, session, deliveries.get(stored.clientId) ?? [], bodies, messages, restored);
    for (const packetId of state.incomingQos2.get(stored.clientId) ?? []) session.incomingQos2.add(packetId);
    deliveries.delete(stored.clientId);
    state.incomingQos2.delete(stored.clientId);
  }
  for (const [id, message] of messages) {
    const record = inlineIn.get(id);
    if (record) persistence.adoptInlineBody(message, restored.get(record) ?? null);
  }
  // Whatever no live session claims (its session expired while the broker was down) goes.
  persistence.deleteLeftovers(deliveries, state.incomingQos2, state.messages, messages);
  // The deliveries hold their own references now.
  for (const message of messages.values()) message.unref();
  for (const session of endedWithWill) publishWill(engine, session);
}

/** Rebuilds a session's queue and inflight messages; expired or orphaned ones are dropped from the store. */
function restoreDeliveries(
  engine: Engine,
  session: Session,
  stored: StoredDelivery[],
  bodies: Map<string, StoredMessage>,
  loaded: Map<string, Message>,
  restored: Map<StoredDelivery, Delivery>,
): void {
  const persistence = engine.persistence;
  for (const d of stored) {
    const delivery = new Delivery(d.seq, null, d.qos, d.retain, d.subscriptionIds);
    delivery.packetId = d.packetId;
    delivery.released = d.released;
    restored.set(d, delivery);
    session.nextSeq = Math.max(session.nextSeq, d.seq + 1);
    if (!d.released) {
      let message = loaded.get(d.messageId);
      const body = bodies.get(d.messageId);
      if (!message && body && !(body.expiresAt !== 0 && body.expiresAt <= Date.now())) {
        message = messageFromStore(engine.core, body) ?? undefined;
        if (!message) throw new Error('the arena cap is too small for the messages in the store');
        loaded.set(d.messageId, message);
      }
      if (!message) {
        // Expired while the broker was down, or its body is missing: the delivery is over.
        persistence.adoptDelivery(delivery, d.clientId, null, d.messageId);
        persistence.deleteDelivery(delivery);
        if (body) persistence.deleteMessageRecord(d.messageId);
        continue;
      }
      delivery.message = message.ref();
    }
    persistence.adoptDelivery(delivery, d.clientId, delivery.message, d.messageId);
    if (d.packetId !== 0) {
      session.inflight.set(d.packetId, delivery);
    } else {
      session.queue.push(delivery);
      session.queuedBytes += delivery.message!.size;
    }
  }
}

/** A stored message back in the arena (null: no room), its expiry moved from wall-clock to performance.now() time. */
export function messageFromStore(
  core: Core,
  stored: { topic: string; payload: Uint8Array; qos: QoS; retain: boolean; forward: Uint8Array | null; expiresAt: number },
): Message | null {
  const expiresAt = stored.expiresAt === 0 ? 0 : performance.now() + (stored.expiresAt - Date.now());
  return Message.create(core, stored.topic, stored.payload, stored.qos, stored.retain, stored.forward, expiresAt);
}

/**
 * Rebuilds a session; its will and its end count from when it was disconnected. One that ended
 * while the broker was down is ended now and, if it owes a will, added to `endedWithWill`.
 */
function restoreSession(engine: Engine, stored: StoredSession, now: number, endedWithWill: Session[]): Session | null {
  const session = engine.createSession(stored.clientId);
  session.stored = true;
  if (stored.owner === undefined) session.ownerKnown = false;
  else engine.setOwner(session, stored.owner ?? undefined);
  session.version = stored.version;
  session.expiryInterval = stored.expiryInterval;
  // A session whose connection was open when the broker stopped lost it then: count from now.
  const disconnectedAt = stored.disconnectedAt === 0 ? now : stored.disconnectedAt;
  session.disconnectedAt = performance.now() - (now - disconnectedAt);
  for (const sub of stored.subscriptions) {
    const filter = parseFilter(engine.core, sub.filter);
    if (filter) engine.router.subscribe(session, filter, sub, sub.subscriptionId);
  }
  engine.router.setOnline(session, false);
  if (stored.will) session.will = willFromStore(stored.will);
  if (session.expiryInterval !== NEVER_EXPIRES && now - disconnectedAt >= session.expiryInterval * 1000) {
    if (session.will) endedWithWill.push(session);
    engine.endSession(session);
    return null;
  }
  // A will whose time passed while the broker was down goes on the first timer run, when every session is back.
  if (session.will) session.willAt = willDue(session);
  engine.startExpiry(session);
  return session;
}

/** The will a stored session still owes, as the session holds it. */
export function willFromStore(stored: StoredWill): WillMessage {
  return {
    topic: stored.topic,
    payload: stored.payload,
    qos: stored.qos,
    retain: stored.retain,
    forward: stored.forward,
    props: { willDelayInterval: stored.delaySeconds, messageExpiryInterval: stored.messageExpiryInterval },
  };
}

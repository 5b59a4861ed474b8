import { Reason } from './codec/constants.js';
import type { QoS, WillMessage } from './codec/packets.js';
import { CloseKind, Connection, ConnState } from './connection.js';
import { deliver, discardDeliveries, Handoff, releaseDeliveries } from './delivery.js';
import { LogAggregator } from './log-aggregator.js';
import { Message } from './message.js';
import { Metrics } from './metrics.js';
import { DEFAULT_OPTIONS, type BrokerOptions, type LogLevel } from './options.js';
import { Persistence } from './persistence.js';
import { parseFilter } from './handlers/subscriptions.js';
import { RetainedMessages } from './retained.js';
import { afterIo } from './schedule.js';
import { Delivery, NEVER_EXPIRES, Session } from './session.js';
import { MemoryStore, type Store, type StoredDelivery, type StoredMessage, type StoredSession } from './store.js';
import type { Transport } from './transport.js';
import type { Core } from './wasm.js';
import { cancelWillTimer, publishWill, scheduleWill } from './will.js';

const utf8 = new TextEncoder();

/** What routing a message achieved, for the publisher's acknowledgement. */
export const enum PublishOutcome {
  NoSubscribers,
  Delivered,
  /** At least one subscriber's queue was full (5.0 publishers hear 0x97 Quota exceeded). */
  QuotaExceeded,
}

/**
 * The broker: owns the wasm core, the sessions and the retained messages, routes every
 * application message, and accepts connections from any transport.
 */
export class Broker {
  readonly options: BrokerOptions;
  readonly metrics = new Metrics();
  readonly retained: RetainedMessages;
  readonly persistence: Persistence;
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Connection>();
  /** Sessions by the numeric id the trie reports; index 0 stays empty (0 = "no publisher"). */
  private readonly sessionsById: (Session | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];
  private readonly shareGroups = new Map<string, number>();
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private closing = false;
  private restoring = false;

  constructor(
    readonly core: Core,
    options: Partial<BrokerOptions> = {},
    store: Store = new MemoryStore(),
    /** Where lines that input can cause per packet go (a host may share it with its own such lines). */
    readonly logs = new LogAggregator(options.logger ?? DEFAULT_OPTIONS.logger),
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.persistence = new Persistence(this, store);
    this.retained = new RetainedMessages(core, (topic, message) => {
      // $SYS values are recomputed by the broker; storing every change would only wear the disk.
      if (this.restoring || topic.startsWith('$SYS/')) return;
      if (message) this.persistence.saveRetained(message);
      else this.persistence.deleteRetained(topic);
    });
  }

  /**
   * Opens the store and rebuilds the arena, the trie and the sessions from it. Sessions that
   * expired while the broker was down are ended (their pending wills published).
   */
  async start(): Promise<void> {
    const store = this.persistence.store;
    await store.open();
    const state = await store.load();
    this.restoring = true;
    try {
      const now = Date.now();
      for (const stored of state.retained) {
        if (stored.expiresAt !== 0 && stored.expiresAt <= now) {
          this.persistence.deleteRetained(stored.topic);
          continue;
        }
        const message = this.messageFromStore(stored);
        if (!message) throw new Error('the arena cap is too small for the retained messages in the store');
        this.retained.apply(message);
        message.release();
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
      this.persistence.continueIdsAfter(bodies.keys());
      const messages = new Map<string, Message>();
      const restored = new Map<StoredDelivery, Delivery>();
      for (const stored of state.sessions) {
        const session = this.restoreSession(stored, now);
        if (!session) continue;
        this.restoreDeliveries(session, deliveries.get(stored.clientId) ?? [], bodies, messages, restored);
        for (const packetId of state.incomingQos2.get(stored.clientId) ?? []) session.incomingQos2.add(packetId);
        deliveries.delete(stored.clientId);
        state.incomingQos2.delete(stored.clientId);
      }
      for (const [id, message] of messages) {
        const record = inlineIn.get(id);
        if (record) this.persistence.adoptInlineBody(message, restored.get(record) ?? null);
      }
      // Whatever no live session claims (its session expired while the broker was down) goes.
      this.persistence.deleteLeftovers(deliveries, state.incomingQos2, state.messages, messages);
      // The deliveries hold their own references now.
      for (const message of messages.values()) message.release();
    } finally {
      this.restoring = false;
    }
  }

  /** Rebuilds a session's queue and inflight messages; expired or orphaned ones are dropped from the store. */
  private restoreDeliveries(
    session: Session,
    stored: StoredDelivery[],
    bodies: Map<string, StoredMessage>,
    loaded: Map<string, Message>,
    restored: Map<StoredDelivery, Delivery>,
  ): void {
    const persistence = this.persistence;
    for (const d of stored) {
      const delivery = new Delivery(d.seq, null, d.qos, d.retain, d.subscriptionIds);
      delivery.packetId = d.packetId;
      delivery.released = d.released;
      delivery.storeKey = { clientId: d.clientId, seq: d.seq };
      restored.set(d, delivery);
      session.nextSeq = Math.max(session.nextSeq, d.seq + 1);
      if (!d.released) {
        let message = loaded.get(d.messageId);
        const body = bodies.get(d.messageId);
        if (!message && body && !(body.expiresAt !== 0 && body.expiresAt <= Date.now())) {
          const created = this.messageFromStore(body);
          if (!created) throw new Error('the arena cap is too small for the messages in the store');
          persistence.adoptMessage(created, d.messageId);
          loaded.set(d.messageId, created);
          message = created;
        }
        if (!message) {
          // Expired while the broker was down, or its body is missing: the delivery is over.
          delivery.persisted = true;
          persistence.deleteDelivery(session, delivery);
          if (body) persistence.deleteMessageRecord(d.messageId);
          continue;
        }
        delivery.message = message.retainRef();
        message.storeRefs++;
      }
      delivery.persisted = true;
      if (d.packetId !== 0) {
        session.inflight.set(d.packetId, delivery);
      } else {
        session.queue.push(delivery);
        session.queuedBytes += delivery.message!.length;
      }
    }
  }

  private messageFromStore(stored: { topic: string; payload: Uint8Array; qos: QoS; retain: boolean; forward: Uint8Array | null; expiresAt: number }): Message | null {
    const expiresAt = stored.expiresAt === 0 ? 0 : performance.now() + (stored.expiresAt - Date.now());
    return Message.create(this.core, stored.topic, stored.payload, stored.qos, stored.retain, stored.forward, expiresAt);
  }

  private restoreSession(stored: StoredSession, now: number): Session | null {
    const session = this.createSession(stored.clientId);
    session.stored = true;
    session.version = stored.version;
    session.expiryInterval = stored.expiryInterval;
    // A session whose connection was open when the broker stopped lost it then: count from now.
    const disconnectedAt = stored.disconnectedAt === 0 ? now : stored.disconnectedAt;
    session.disconnectedAt = performance.now() - (now - disconnectedAt);
    for (const sub of stored.subscriptions) {
      const parsed = parseFilter(this, sub.filter);
      if (!parsed) continue;
      const options = sub.qos | (sub.noLocal ? 4 : 0) | (sub.retainAsPublished ? 8 : 0) | (sub.retainHandling << 4);
      this.core.subscribe(session.id, parsed.bytes, options, sub.subscriptionId, parsed.group ? this.shareGroupId(parsed.group) : 0);
      session.subscriptions.set(sub.filter, { ...sub, topicFilter: parsed.topicFilter, group: parsed.group });
    }
    this.core.setClientOnline(session.id, false);
    if (stored.will) {
      const will: WillMessage = {
        topic: stored.will.topic,
        payload: stored.will.payload,
        qos: stored.will.qos,
        retain: stored.will.retain,
        forward: stored.will.forward,
        props: { willDelayInterval: stored.will.delaySeconds, messageExpiryInterval: stored.will.messageExpiryInterval },
      };
      session.will = will;
    }
    const elapsed = (now - disconnectedAt) / 1000;
    if (session.expiryInterval !== NEVER_EXPIRES && elapsed >= session.expiryInterval) {
      this.endSession(session);
      return null;
    }
    if (session.will) scheduleWill(this, session, elapsed);
    if (session.expiryInterval !== NEVER_EXPIRES) this.startExpiry(session, session.expiryInterval - elapsed);
    return session;
  }

  private startExpiry(session: Session, seconds: number): void {
    session.expiryTimer = setTimeout(() => this.endSession(session), seconds * 1000);
    session.expiryTimer.unref?.();
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    this.options.logger(level, message, fields);
  }

  /** Logs what input can cause per packet or per message: aggregated per `key` (a client, an address), see LogAggregator. */
  logRepeatable(level: LogLevel, message: string, key: string, fields?: Record<string, unknown>): void {
    this.logs.note(level, message, key, fields);
  }

  /** Starts serving one client over `transport`. */
  accept(transport: Transport): Connection | null {
    if (this.closing) {
      transport.destroy();
      return null;
    }
    const conn = new Connection(this, transport);
    this.connections.add(conn);
    this.metrics.connectionsAccepted++;
    return conn;
  }

  /**
   * Routes a message to every matching subscription and applies its RETAIN flag. The caller keeps
   * its own reference.
   */
  publish(message: Message, publisher: Session | null): PublishOutcome {
    if (message.retain && this.options.retainAvailable) this.retained.apply(message);
    const result = this.core.match(message.topicPtr(), message.topicLength, publisher ? publisher.id : 0);
    const count = result.count;
    let outcome = count === 0 ? PublishOutcome.NoSubscribers : PublishOutcome.Delivered;
    for (let i = 0; i < count; i++) {
      const session = this.sessionsById[result.client(i)];
      if (!session) continue;
      const granted = result.qos(i);
      const qos = (message.qos < granted ? message.qos : granted) as QoS;
      // RETAIN is cleared on normal delivery unless the subscription asked for it as published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
      const retain = message.retain && result.retainAsPublished(i);
      const ids = session.version === 5 ? result.subscriptionIds(i) : null;
      if (deliver(this, session, message, qos, retain, ids !== null && ids.length > 0 ? ids : null) === Handoff.QueueFull) {
        outcome = PublishOutcome.QuotaExceeded;
      }
    }
    return outcome;
  }

  /** Interned id of a `$share/{name}/` group for the trie. */
  shareGroupId(name: string): number {
    let id = this.shareGroups.get(name);
    if (id === undefined) {
      id = this.shareGroups.size + 1;
      this.shareGroups.set(name, id);
    }
    return id;
  }

  encodeTopic(topic: string): Uint8Array {
    return utf8.encode(topic);
  }

  /** Creates a session for `clientId`, replacing nothing (the caller ended any previous one). */
  createSession(clientId: string): Session {
    const id = this.freeIds.pop() ?? this.sessionsById.length;
    const session = new Session(id, clientId);
    this.sessionsById[id] = session;
    this.sessions.set(clientId, session);
    return session;
  }

  /** Ends a session: its subscriptions, queued and inflight messages go; a pending will is published [MQTT-3.1.3-9]. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) !== session) return;
    if (session.willTimer) publishWill(this, session);
    discardDeliveries(this, session);
    for (const packetId of session.incomingQos2) this.persistence.deleteIncomingQos2(session, packetId);
    this.releaseSession(session);
    this.persistence.deleteSession(session);
  }

  /** Drops the session from memory: trie entries, timers, message references. */
  private releaseSession(session: Session): void {
    this.sessions.delete(session.clientId);
    session.connection = null;
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    cancelWillTimer(session);
    for (const sub of session.subscriptions.values()) {
      this.core.unsubscribe(session.id, utf8.encode(sub.topicFilter), sub.group ? this.shareGroupId(sub.group) : 0);
    }
    session.subscriptions.clear();
    releaseDeliveries(session);
    this.core.setClientOnline(session.id, true);
    this.sessionsById[session.id] = undefined;
    this.freeIds.push(session.id);
  }

  /** Binds a connection to its session (after CONNACK is queued). */
  attach(session: Session, conn: Connection): void {
    session.connection = conn;
    conn.session = session;
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    // Coming back before the Will Delay Interval ends cancels the previous connection's will [MQTT-3.1.3-9].
    cancelWillTimer(session);
    this.core.setClientOnline(session.id, true);
  }

  /** A connection is gone: detach it, publish or schedule its will, start its session's expiry. */
  connectionClosed(conn: Connection, kind: CloseKind): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (!session || session.connection !== conn) return;
    session.connection = null;
    session.disconnectedAt = performance.now();
    this.core.setClientOnline(session.id, false);
    if (kind === CloseKind.Abnormal) scheduleWill(this, session);
    else session.will = null;
    this.log('debug', 'client disconnected', { client: session.clientId, graceful: kind === CloseKind.Graceful });
    if (this.closing) return;
    if (session.expiryInterval === 0) {
      this.endSession(session);
      return;
    }
    if (session.expiryInterval !== NEVER_EXPIRES) this.startExpiry(session, session.expiryInterval);
    this.persistence.saveSession(session);
  }

  scheduleFlush(conn: Connection): void {
    this.dirty.push(conn);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    afterIo(this.flushAll);
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
  };

  /**
   * Stops the broker: every client gets DISCONNECT 0x8B (5.0) and is closed, then all state held in
   * the arena is released.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const conn of [...this.connections]) {
      if (conn.state === ConnState.Connected) conn.disconnect(Reason.ServerShuttingDown);
      else conn.close(CloseKind.Abnormal);
    }
    this.flushAll();
    const now = performance.now();
    for (const session of this.sessions.values()) {
      if (!session.connection) continue;
      session.connection = null;
      session.disconnectedAt = now;
      this.persistence.saveSession(session);
    }
    await this.persistence.drain();
    // The store keeps the state; here only memory is given back.
    for (const session of [...this.sessions.values()]) this.releaseSession(session);
    this.retained.clear();
    this.logs.flush();
    await this.persistence.store.close();
  }
}

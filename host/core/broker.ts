import { Reason } from './codec/constants.js';
import type { QoS, WillMessage } from './codec/packets.js';
import { CloseKind, Connection, ConnState } from './connection.js';
import { deliver, discardDeliveries, Handoff, releaseDeliveries } from './delivery.js';
import { LogAggregator } from './log-aggregator.js';
import { Message } from './message.js';
import { Metrics } from './metrics.js';
import { DEFAULT_OPTIONS, type BrokerOptions, type LogLevel, type ReadCheck } from './options.js';
import { Persistence } from './persistence.js';
import { parseFilter } from './handlers/subscriptions.js';
import { RetainedMessages } from './retained.js';
import { afterIo } from './schedule.js';
import { Delivery, NEVER_EXPIRES, Session } from './session.js';
import { MemoryStore, type Store, type StoredDelivery, type StoredMessage, type StoredSession } from './store.js';
import type { Tentative } from './tentative.js';
import { Timers } from './timers.js';
import type { Transport } from './transport.js';
import type { Core } from './wasm/core.js';
import { cancelWillTimer, publishWill, scheduleWill, willDue } from './will.js';

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
  /** Every deadline: CONNECT and keep alive per connection, will and expiry per disconnected session, $SYS. */
  readonly timers = new Timers();
  /** Sessions by the numeric id the trie reports; index 0 stays empty (0 = "no publisher"). */
  private readonly sessionsById: (Session | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];
  private readonly shareGroups = new Map<string, number>();
  /** While a QoS 1/2 PUBLISH whose acceptance is undecided is routed: where its deliveries wait. */
  tentative: Tentative | null = null;
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private closing = false;
  private restoring = false;
  /** The message being routed, while a read-checked match runs (shared-group members are asked about it). */
  private routing: Message | null = null;
  /** The shared read check asked last while routing `routing`, and its answer: consecutive subscribers mostly share one. */
  private lastShared: ReadCheck['shared'] | null = null;
  private lastVerdict: boolean | undefined = undefined;

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
   * expired while the broker was down are ended and their pending wills published, once every
   * session is back to receive them.
   */
  async start(): Promise<void> {
    const store = this.persistence.store;
    await store.open();
    const state = await store.load();
    const endedWithWill: Session[] = [];
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
      this.persistence.continueIdsAfter(bodies.keys());
      const messages = new Map<string, Message>();
      const restored = new Map<StoredDelivery, Delivery>();
      for (const stored of state.sessions) {
        const session = this.restoreSession(stored, now, endedWithWill);
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
      for (const message of messages.values()) message.unref();
    } finally {
      this.restoring = false;
    }
    for (const session of endedWithWill) publishWill(this, session);
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
        delivery.message = message.ref();
        message.storeRefs++;
      }
      delivery.persisted = true;
      if (d.packetId !== 0) {
        session.inflight.set(d.packetId, delivery);
      } else {
        session.queue.push(delivery);
        session.queuedBytes += delivery.message!.size;
      }
    }
  }

  private messageFromStore(stored: { topic: string; payload: Uint8Array; qos: QoS; retain: boolean; forward: Uint8Array | null; expiresAt: number }): Message | null {
    const expiresAt = stored.expiresAt === 0 ? 0 : performance.now() + (stored.expiresAt - Date.now());
    return Message.create(this.core, stored.topic, stored.payload, stored.qos, stored.retain, stored.forward, expiresAt);
  }

  /**
   * Rebuilds a session; its will and its end count from when it was disconnected. One that ended
   * while the broker was down is ended now and, if it owes a will, added to `endedWithWill`.
   */
  private restoreSession(stored: StoredSession, now: number, endedWithWill: Session[]): Session | null {
    const session = this.createSession(stored.clientId);
    session.stored = true;
    if (stored.owner === undefined) session.ownerKnown = false;
    else this.setOwner(session, stored.owner ?? undefined);
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
    if (session.expiryInterval !== NEVER_EXPIRES && now - disconnectedAt >= session.expiryInterval * 1000) {
      if (session.will) endedWithWill.push(session);
      this.endSession(session);
      return null;
    }
    // A will whose time passed while the broker was down goes on the first timer run, when every session is back.
    if (session.will) session.willAt = willDue(session);
    this.startExpiry(session);
    return session;
  }

  /** Starts the end of a disconnected session, counted from its disconnection (NEVER_EXPIRES: it has none). */
  private startExpiry(session: Session): void {
    session.endsAt = session.expiryInterval === NEVER_EXPIRES ? Infinity : session.disconnectedAt + session.expiryInterval * 1000;
    this.armSession(session);
  }

  /** Sets the session's one timer to its next deadline: its will's or its end. */
  private armSession(session: Session): void {
    const due = Math.min(session.willAt, session.endsAt);
    if (due === Infinity) this.timers.cancel(session);
    else this.timers.schedule(session, due);
  }

  /** A disconnected session's deadline came: its will goes, and the session ends when its time is up too. */
  sessionDue(session: Session, now: number): void {
    if (session.willAt <= now) {
      publishWill(this, session);
      // The store must not hold the will any more: a restart would publish it again.
      if (session.endsAt > now) this.persistence.saveSession(session);
    }
    if (session.endsAt <= now) {
      this.endSession(session);
      return;
    }
    this.armSession(session);
  }

  /** close() has begun. */
  get isClosing(): boolean {
    return this.closing;
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
    if (message.retain && this.options.retainAvailable) {
      if (this.tentative) this.tentative.replacedRetained(this.retained.replace(message));
      else this.retained.apply(message);
    }
    // Without a read hook no delivery pays anything for read checks.
    const checking = this.options.readAccess !== undefined;
    if (checking) {
      this.routing = message;
      this.lastShared = null;
    }
    const result = this.core.match(message.topicPtr(), message.topicLength, publisher ? publisher.id : 0, checking ? this.memberMayRead : undefined);
    const count = result.count;
    let outcome = count === 0 ? PublishOutcome.NoSubscribers : PublishOutcome.Delivered;
    for (let i = 0; i < count; i++) {
      const session = this.sessionsById[result.client(i)];
      if (!session) continue;
      // A shared group's pick was checked during the match already; asking again is cheap.
      if (checking && !this.mayReadRouted(session)) continue;
      const granted = result.qos(i);
      const qos = (message.qos < granted ? message.qos : granted) as QoS;
      // RETAIN is cleared on normal delivery unless the subscription asked for it as published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
      const retain = message.retain && result.retainAsPublished(i);
      const ids = session.version === 5 ? result.subscriptionIds(i) : null;
      if (deliver(this, session, message, qos, retain, ids !== null && ids.length > 0 ? ids : null) === Handoff.QueueFull) {
        outcome = PublishOutcome.QuotaExceeded;
      }
    }
    this.routing = null;
    return outcome;
  }

  private readonly memberMayRead = (client: number): boolean => {
    const session = this.sessionsById[client];
    return session !== undefined && this.mayReadRouted(session);
  };

  /** May the session read the message being routed? */
  private mayReadRouted(session: Session): boolean {
    const check = session.readCheck;
    if (check === null) return true;
    if (check.shared !== this.lastShared) {
      this.lastShared = check.shared;
      this.lastVerdict = check.shared(this.routing!.topic());
    }
    return this.lastVerdict ?? check.own(this.routing!.topic());
  }

  /** May the session read this message (its owner's current read access)? */
  mayRead(session: Session, message: Message): boolean {
    const check = session.readCheck;
    if (check === null) return true;
    const topic = message.topic();
    return check.shared(topic) ?? check.own(topic);
  }

  /** Gives the session its owner, whose read access applies to every delivery from now on. */
  setOwner(session: Session, username: string | undefined): void {
    session.owner = username;
    session.ownerKnown = true;
    const readAccess = this.options.readAccess;
    session.readCheck = readAccess ? readAccess({ clientId: session.clientId, username }) : null;
  }

  /**
   * The read access rules changed (an ACL reload): every session gets its owner's new check, so
   * deliveries from now on — queued ones included — follow the new rules.
   */
  readAccessChanged(): void {
    for (const session of this.sessions.values()) {
      if (session.ownerKnown) this.setOwner(session, session.owner);
    }
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
    const session = new Session(this, id, clientId);
    this.sessionsById[id] = session;
    this.sessions.set(clientId, session);
    return session;
  }

  /** Ends a session: its subscriptions, queued and inflight messages go; a pending will is published [MQTT-3.1.3-9]. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) !== session) return;
    if (session.willAt !== Infinity) publishWill(this, session);
    discardDeliveries(this, session);
    for (const packetId of session.incomingQos2) this.persistence.deleteIncomingQos2(session, packetId);
    this.releaseSession(session);
    this.persistence.deleteSession(session);
  }

  /** Drops the session from memory: trie entries, timers, message references. */
  private releaseSession(session: Session): void {
    this.sessions.delete(session.clientId);
    session.connection = null;
    this.stopSessionTimer(session);
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
    session.remoteAddress = conn.remoteAddress;
    conn.session = session;
    // Coming back before the Will Delay Interval ends cancels the previous connection's will [MQTT-3.1.3-9].
    this.stopSessionTimer(session);
    this.core.setClientOnline(session.id, true);
  }

  /** Neither the session's will nor its end is pending any more. */
  private stopSessionTimer(session: Session): void {
    cancelWillTimer(session);
    session.endsAt = Infinity;
    this.timers.cancel(session);
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
    this.startExpiry(session);
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
    // From here no deadline fires: the store keeps when each session was disconnected.
    this.timers.stop();
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

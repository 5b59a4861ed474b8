import { Reason } from './codec/constants.js';
import type { QoS } from './codec/packets.js';
import { CloseKind, Connection, ConnState } from './connection.js';
import { deliver, discardDeliveries } from './delivery.js';
import type { Message } from './message.js';
import { Metrics } from './metrics.js';
import { DEFAULT_OPTIONS, type BrokerOptions, type LogLevel } from './options.js';
import { RetainedMessages } from './retained.js';
import { afterIo } from './schedule.js';
import { NEVER_EXPIRES, Session } from './session.js';
import type { Transport } from './transport.js';
import type { Core } from './wasm.js';
import { cancelWillTimer, publishWill, scheduleWill } from './will.js';

const utf8 = new TextEncoder();

/**
 * The broker: owns the wasm core, the sessions and the retained messages, routes every
 * application message, and accepts connections from any transport.
 */
export class Broker {
  readonly options: BrokerOptions;
  readonly metrics = new Metrics();
  readonly retained: RetainedMessages;
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Connection>();
  /** Sessions by the numeric id the trie reports; index 0 stays empty (0 = "no publisher"). */
  private readonly sessionsById: (Session | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];
  private readonly shareGroups = new Map<string, number>();
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private closing = false;

  constructor(
    readonly core: Core,
    options: Partial<BrokerOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.retained = new RetainedMessages(core);
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    this.options.logger(level, message, fields);
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
   * its own reference. Returns the number of sessions it was given to.
   */
  publish(message: Message, publisher: Session | null): number {
    if (message.retain && this.options.retainAvailable) this.retained.apply(message);
    const result = this.core.match(message.topicPtr(), message.topicLength, publisher ? publisher.id : 0);
    const count = result.count;
    for (let i = 0; i < count; i++) {
      const session = this.sessionsById[result.client(i)];
      if (!session) continue;
      const granted = result.qos(i);
      const qos = (message.qos < granted ? message.qos : granted) as QoS;
      // RETAIN is cleared on normal delivery unless the subscription asked for it as published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
      const retain = message.retain && result.retainAsPublished(i);
      const ids = session.version === 5 ? result.subscriptionIds(i) : null;
      deliver(this, session, message, qos, retain, ids !== null && ids.length > 0 ? ids : null);
    }
    return count;
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
    this.sessions.delete(session.clientId);
    session.connection = null;
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    session.expiryTimer = null;
    if (session.willTimer) publishWill(this, session);
    cancelWillTimer(session);
    for (const sub of session.subscriptions.values()) {
      this.core.unsubscribe(session.id, utf8.encode(sub.topicFilter), sub.group ? this.shareGroupId(sub.group) : 0);
    }
    session.subscriptions.clear();
    discardDeliveries(session);
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
    if (session.expiryInterval === 0 || this.closing) {
      if (!this.closing) this.endSession(session);
    } else if (session.expiryInterval !== NEVER_EXPIRES) {
      session.expiryTimer = setTimeout(() => this.endSession(session), session.expiryInterval * 1000);
      session.expiryTimer.unref?.();
    }
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
    for (const session of [...this.sessions.values()]) {
      session.will = null;
      this.endSession(session);
    }
    this.retained.clear();
  }
}

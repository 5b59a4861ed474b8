import type { Core } from '../wasm/core.js';
import type { BrokerCluster } from './cluster-hooks.js';
import { discardDeliveries, releaseDeliveries } from './delivery.js';
import { LogAggregator } from './log-aggregator.js';
import { Metrics } from './metrics.js';
import { DEFAULT_OPTIONS, type BrokerOptions, type LogLevel } from './options.js';
import { CloseKind } from './outcomes.js';
import type { ClientOutlet } from './outlet.js';
import { Persistence } from './persistence.js';
import { RetainedMessages } from './retained.js';
import { Router } from './router.js';
import { NEVER_EXPIRES, Session } from './session.js';
import { type Store, VolatileStore } from './store.js';
import { Timers } from './timers.js';
import { cancelWillTimer, publishWill, scheduleWill } from './will.js';

/**
 * The broker without its connections: the sessions and their deadlines, routing (router.ts),
 * retained messages and persistence, over one wasm core. The packet handlers work on this; Broker
 * (broker.ts) adds the connections that feed it, restoring (restore.ts) fills it from the store.
 */
export class Engine {
  readonly options: BrokerOptions;
  readonly metrics = new Metrics();
  readonly retained: RetainedMessages;
  readonly persistence: Persistence;
  readonly router: Router;
  readonly sessions = new Map<string, Session>();
  /** Every deadline: CONNECT and keep alive per connection, will and expiry per disconnected session, $SYS. */
  readonly timers = new Timers();
  protected closing = false;
  /** Set when this broker is one node of a cluster (host/node/cluster); null otherwise. */
  cluster: BrokerCluster | null = null;
  /**
   * Set by the host while the process is over its memory limit (maxMemory): CONNECTs and new PUBLISHes
   * are refused (0x97) until it clears, so what is already held can drain.
   */
  overloaded = false;

  constructor(
    readonly core: Core,
    options: Partial<BrokerOptions> = {},
    store: Store = new VolatileStore(),
    /** Where lines that input can cause per packet go (a host may share it with its own such lines). */
    readonly logs = new LogAggregator(options.logger ?? DEFAULT_OPTIONS.logger),
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.persistence = new Persistence(store, this.options.logger);
    this.retained = new RetainedMessages(core, (topic, message) => {
      // $SYS values are recomputed by the broker; storing every change would only wear the disk.
      if (topic.startsWith('$SYS/')) return;
      if (message) this.persistence.saveRetained(message);
      else this.persistence.deleteRetained(topic);
    });
    this.router = new Router(this);
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

  /** Creates a session for `clientId`, replacing nothing (the caller ended any previous one). */
  createSession(clientId: string): Session {
    const session = new Session(this, this.router.nextId(), clientId);
    this.router.add(session);
    this.sessions.set(clientId, session);
    return session;
  }

  /** Ends a session: its subscriptions, queued and inflight messages go; a pending will is published [MQTT-3.1.3-9]. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) !== session) return;
    if (session.willAt !== Infinity) publishWill(this, session);
    discardDeliveries(this, session);
    if (session.incomingQos2Count > 0) for (const packetId of session.incomingQos2) this.persistence.deleteIncomingQos2(session, packetId);
    this.releaseSession(session);
    this.persistence.deleteSession(session);
    this.cluster?.sessionEnded(session);
  }

  /** Drops the session from memory: trie entries, timers, message references. */
  protected releaseSession(session: Session): void {
    this.sessions.delete(session.clientId);
    session.outlet = null;
    this.stopSessionTimer(session);
    this.router.remove(session);
    releaseDeliveries(session);
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

  /** Messages for the session go to `outlet` from now on (a connection's CONNACK is queued). */
  attach(session: Session, outlet: ClientOutlet): void {
    session.outlet = outlet;
    session.remoteAddress = outlet.remoteAddress;
    // Coming back before the Will Delay Interval ends cancels the previous connection's will [MQTT-3.1.3-9].
    this.stopSessionTimer(session);
    this.router.setOnline(session, true);
  }

  /** The session's outlet is gone (its connection closed, `kind` why): publish or schedule its will, start its expiry. */
  detach(session: Session, kind: CloseKind): void {
    session.outlet = null;
    session.disconnectedAt = performance.now();
    this.router.setOnline(session, false);
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

  /** Starts the end of a disconnected session, counted from its disconnection (NEVER_EXPIRES: it has none). */
  /**
   * A session installed here without a connection — a cluster replica whose owner is gone — counts
   * as disconnected from now: its will (if the owner's connection left one) and its end are scheduled.
   */
  adoptDisconnected(session: Session): void {
    session.disconnectedAt = performance.now();
    this.core.setClientOnline(session.id, false);
    scheduleWill(this, session);
    this.startExpiry(session);
    this.persistence.saveSession(session);
  }

  startExpiry(session: Session): void {
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

  /** Neither the session's will nor its end is pending any more. */
  private stopSessionTimer(session: Session): void {
    cancelWillTimer(session);
    session.endsAt = Infinity;
    this.timers.cancel(session);
  }
}

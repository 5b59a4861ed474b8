import type { ProtocolVersion } from '../codec/constants.js';
import type { QoS, Subscription, WillMessage } from '../codec/packets.js';
import { Deque } from './deque.js';
import type { Engine } from './engine.js';
import type { Message } from './message.js';
import type { ReadCheck } from './options.js';
import type { ClientOutlet } from './outlet.js';
import type { DeliveryRecord } from './persistence.js';
import type { Timed } from './timers.js';

/** A subscription as the session remembers it (the trie holds the routing copy, router.ts). */
export interface SessionSubscription extends Subscription {
  /** Topic filter without any `$share/{group}/` prefix. */
  topicFilter: string;
  /** Share name of a `$share/{group}/…` subscription, else undefined. */
  group: string | undefined;
  subscriptionId: number;
}

/**
 * One QoS 1/2 message on its way to a session: queued (packetId 0) until the client is online and
 * its receive window has room, then in flight until the final acknowledgement.
 */
export class Delivery {
  /** 0 while queued. */
  packetId = 0;
  /** PUBREC received: only PUBREL / PUBCOMP remain and the message reference is already released. */
  released = false;
  /** Persistence's record of it in the store (its session is persistent), else null. */
  storage: DeliveryRecord | null = null;
  /**
   * Reasons not to send it yet, each released when a commit ends: its publisher's acknowledgement is
   * not decided, or the state its PUBLISH / PUBREL implies (packet identifier, PUBREC received) is not
   * durable. A client must never see a packet the broker could forget in a crash.
   */
  holds = 0;
  /** Finished (acknowledged, expired, discarded or cancelled): nothing more is sent for it. */
  done = false;

  constructor(
    /** Order within the session, kept across restarts. */
    readonly seq: number,
    public message: Message | null,
    readonly qos: QoS,
    readonly retain: boolean,
    readonly subscriptionIds: number[] | null,
  ) {}
}

/** Session expiry meaning "never" [MQTT-3.1.2-23 note: 0xFFFFFFFF]. */
export const NEVER_EXPIRES = 0xffffffff;

/**
 * Per-client state that outlives a network connection (§4.1): subscriptions, QoS 1/2 messages in
 * flight both ways, the offline queue and the will. `id` is the numeric identity the wasm trie knows.
 * While no connection holds it, it is one entry in the broker's Timers, due at the earlier of its
 * will's and its own end.
 */
export class Session implements Timed {
  /** Where its messages go while a client is connected (its Connection); null while it is away. */
  outlet: ClientOutlet | null = null;
  version: ProtocolVersion = 4;
  // The collections below are created on first use: an idle device that never subscribes, never
  // gets a QoS 1/2 message queued or sends QoS 2 does not pay for empty hash tables (~130 bytes
  // each) or an empty queue (48).
  private subscriptionMap: Map<string, SessionSubscription> | null = null;
  private inflightMap: Map<number, Delivery> | null = null;
  private incomingQos2Set: Set<number> | null = null;
  private queued: Deque<Delivery> | null = null;
  queuedBytes = 0;
  /** Next Delivery.seq. */
  nextSeq = 1;
  /**
   * Sends waiting for a commit (a QoS 2 delivery's record, or anything queued behind one): while
   * some wait, later ones wait too, so the client receives messages in the order they were routed [MQTT-4.6.0-6].
   */
  waitingSends = 0;
  /** Seconds; 0 ends the session with the connection, NEVER_EXPIRES never. */
  expiryInterval = 0;
  will: WillMessage | null = null;
  /** performance.now() when the pending will is published (it was left by an abnormal close); Infinity = none pending. */
  willAt = Infinity;
  /** performance.now() when the session ends, counted from its disconnection; Infinity = not while connected, or never. */
  endsAt = Infinity;
  timerDue = 0;
  timerSlot = -1;
  /** performance.now() when the last connection closed, for expiry on restart. */
  disconnectedAt = 0;
  /** The store holds a record of this session. */
  stored = false;
  /**
   * The user name the session belongs to (undefined = anonymous): only a connection authenticated
   * as the same user may take it over or resume it.
   */
  owner: string | undefined = undefined;
  /** False for a session restored from a store that did not record owners, until a connection claims it. */
  ownerKnown = true;
  /** The owner's read access (BrokerOptions.readAccess); null = no read checks for this session. */
  readCheck: ReadCheck | null = null;
  /** Where the last connection came from (for hooks asked about the will after it closed). */
  remoteAddress = '';
  private nextPacketId = 1;

  constructor(
    private readonly engine: Engine,
    readonly id: number,
    readonly clientId: string,
  ) {}

  get subscriptions(): Map<string, SessionSubscription> {
    return (this.subscriptionMap ??= new Map());
  }

  /** How many filters it subscribes to, without creating the map. */
  get subscriptionCount(): number {
    return this.subscriptionMap?.size ?? 0;
  }

  /** Outgoing QoS 1/2 by packet identifier, in send order. */
  get inflight(): Map<number, Delivery> {
    return (this.inflightMap ??= new Map());
  }

  /** How many are in flight, without creating the map. */
  get inflightCount(): number {
    return this.inflightMap?.size ?? 0;
  }

  /** The deliveries in flight in send order, as a copy (safe while they finish); no map is created. */
  inflightList(): Delivery[] {
    return this.inflightMap === null ? [] : [...this.inflightMap.values()];
  }

  /** QoS 1/2 deliveries waiting for the client or for room in its receive window, oldest first. */
  get queue(): Deque<Delivery> {
    return (this.queued ??= new Deque());
  }

  /** How many are queued, without creating the queue. */
  get queueLength(): number {
    return this.queued === null ? 0 : this.queued.length;
  }

  /** Incoming QoS 2 packet identifiers between PUBREC and PUBREL: the exactly-once guard. */
  get incomingQos2(): Set<number> {
    return (this.incomingQos2Set ??= new Set());
  }

  /** How many incoming QoS 2 identifiers it holds, without creating the set. */
  get incomingQos2Count(): number {
    return this.incomingQos2Set?.size ?? 0;
  }

  onTimer(now: number): void {
    this.engine.sessionDue(this, now);
  }

  get online(): boolean {
    return this.outlet !== null;
  }

  /** A QoS 2 PUBLISH with this identifier was accepted: remembered, and stored, until its PUBREL [MQTT-4.3.3-10]. */
  rememberIncoming(packetId: number): void {
    this.incomingQos2.add(packetId);
    this.engine.persistence.saveIncomingQos2(this, packetId);
  }

  /** Its PUBREL came, or its acceptance failed: forgotten, in the store too. False when it was not remembered. */
  forgetIncoming(packetId: number): boolean {
    if (!this.incomingQos2.delete(packetId)) return false;
    this.engine.persistence.deleteIncomingQos2(this, packetId);
    return true;
  }

  /** The next free outgoing packet identifier (1..65535, skipping those in flight) [MQTT-2.2.1-3]. */
  allocatePacketId(): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
    throw new Error('all 65535 packet identifiers are in flight');
  }
}

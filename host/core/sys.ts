import type { Broker } from './broker.js';
import { Message } from './model/message.js';
import type { Timed } from './model/timers.js';
import type { ArenaTierStats } from './wasm/core.js';

/** Arena size tiers in the order `Core.arenaStats().tiers` reports them. */
export const ARENA_TIERS = ['small', 'medium', 'large', 'huge'] as const;

/** The broker's state and counters at one instant: what $SYS topics and the Prometheus endpoint report. */
export interface BrokerStats {
  uptimeSeconds: number;
  /** Sessions with a connection that has completed CONNECT. */
  clientsConnected: number;
  /** Persistent sessions whose client is away. */
  clientsDisconnected: number;
  /** Sessions, online or not. */
  sessions: number;
  /** Open network connections, including those that have not sent CONNECT yet. */
  connections: number;
  connectionsAccepted: number;
  bytesReceived: number;
  bytesSent: number;
  packetsReceived: number;
  packetsSent: number;
  publishReceived: number;
  publishSent: number;
  dropped: { qos0Backlog: number; queueFull: number; expired: number; oversize: number; arenaFull: number };
  /** PUBLISHes turned away: not authorized (ACL, `$` topics), or refused with an error reason code. */
  publishRefused: { notAuthorized: number; error: number };
  /** Control packets not sent because they exceed the client's Maximum Packet Size. */
  packetsDropped: number;
  /** CONNECTs answered with a refusal. */
  connectsRefused: number;
  /** Connections the broker closed, by why. */
  closed: { protocolError: number; connectTimeout: number; keepAlive: number; takenOver: number; unauthenticatedOverflow: number };
  /** Bytes held now by connections whose CONNECT is not accepted yet. */
  unauthenticatedBytes: number;
  /** Log lines folded into a count (LogAggregator). */
  logLinesSuppressed: number;
  /** Connections closed for an error in the broker itself rather than in their input (should stay 0). */
  internalErrors: number;
  /** 1 while the process is over its memory limit, and the CONNECTs and PUBLISHes refused for it since start. */
  memoryLimited: number;
  memoryRefused: number;
  /** Outgoing QoS 1/2 messages awaiting acknowledgement, over all sessions. */
  inflight: number;
  /** Messages waiting in session queues and their payload bytes. */
  queued: number;
  queuedBytes: number;
  subscriptions: number;
  retained: number;
  arena: { bytesInUse: number; bytesReserved: number; cap: number; liveHandles: number; errors: number; tiers: ArenaTierStats[] };
}

export function brokerStats(broker: Broker): BrokerStats {
  let connected = 0;
  let inflight = 0;
  let queued = 0;
  let queuedBytes = 0;
  for (const session of broker.sessions.values()) {
    if (session.outlet) connected++;
    inflight += session.inflightCount;
    queued += session.queueLength;
    queuedBytes += session.queuedBytes;
  }
  const m = broker.metrics;
  const arena = broker.core.arenaStats();
  return {
    uptimeSeconds: Math.floor((Date.now() - m.startedAt) / 1000),
    clientsConnected: connected,
    clientsDisconnected: broker.sessions.size - connected,
    sessions: broker.sessions.size,
    connections: broker.connections.size,
    connectionsAccepted: m.connectionsAccepted,
    bytesReceived: m.bytesReceived,
    bytesSent: m.bytesSent,
    packetsReceived: m.packetsReceived,
    packetsSent: m.packetsSent,
    publishReceived: m.messagesReceived,
    publishSent: m.messagesSent,
    dropped: {
      qos0Backlog: m.qos0Dropped,
      queueFull: m.queueDropped,
      expired: m.expiredDropped,
      oversize: m.oversizeDropped,
      arenaFull: m.arenaFullDropped,
    },
    publishRefused: { notAuthorized: m.publishDenied, error: m.publishRefused },
    packetsDropped: m.packetsDropped,
    connectsRefused: m.connectsRefused,
    closed: {
      protocolError: m.protocolErrors,
      connectTimeout: m.connectTimeouts,
      keepAlive: m.keepAliveTimeouts,
      takenOver: m.sessionTakeovers,
      unauthenticatedOverflow: m.unauthenticatedOverflows,
    },
    unauthenticatedBytes: m.unauthenticatedBytes,
    logLinesSuppressed: broker.logs.suppressed,
    internalErrors: m.internalErrors,
    memoryLimited: broker.overloaded ? 1 : 0,
    memoryRefused: m.memoryRefused,
    inflight,
    queued,
    queuedBytes,
    subscriptions: broker.core.subscriptionCount(),
    retained: broker.retained.count,
    arena: {
      bytesInUse: arena.bytesInUse,
      bytesReserved: arena.bytesReserved,
      cap: arena.cap,
      liveHandles: arena.liveHandles,
      errors: arena.errors,
      tiers: arena.tiers,
    },
  };
}

export const totalDropped = (d: BrokerStats['dropped']): number => d.qos0Backlog + d.queueFull + d.expired + d.oversize + d.arenaFull;

export interface SysOptions {
  /** Seconds between updates; 0 publishes once (at start) and never again. */
  intervalSeconds: number;
  /** Reported as `$SYS/broker/version`: "arbormq version {version}". */
  version: string;
  /** More values from the host, by their name under `$SYS/broker/` (a cluster node's links). */
  extra?: () => [string, string | number][];
}

/** Windows of Mosquitto's `$SYS/broker/load/…/{1min,5min,15min}` moving averages, in seconds. */
const LOAD_WINDOWS = [
  ['1min', 60],
  ['5min', 300],
  ['15min', 900],
] as const;

/** Counters whose rates are published as load averages, by their topic under `$SYS/broker/load/`. */
const LOAD_COUNTERS: [string, (s: BrokerStats) => number][] = [
  ['bytes/received', (s) => s.bytesReceived],
  ['bytes/sent', (s) => s.bytesSent],
  ['messages/received', (s) => s.packetsReceived],
  ['messages/sent', (s) => s.packetsSent],
  ['publish/received', (s) => s.publishReceived],
  ['publish/sent', (s) => s.publishSent],
  ['publish/dropped', (s) => totalDropped(s.dropped)],
  ['sockets', (s) => s.connectionsAccepted],
];

/**
 * Publishes the broker's state under `$SYS/broker/` with Mosquitto's topic names, retained, so a
 * new subscriber sees the latest values at once. A topic is published again only when its value
 * changed, which keeps idle brokers quiet (and their stores unwritten). Clients cannot publish to
 * `$SYS`: the hosts' publish authorization refuses every client topic starting with `$`.
 */
export class SysTopics implements Timed {
  timerDue = 0;
  timerSlot = -1;
  private readonly last = new Map<string, string>();
  private maximumConnected = 0;
  private previous: { at: number; counters: number[] } | null = null;
  /** Moving averages per LOAD_COUNTERS entry and LOAD_WINDOWS entry, in events per minute. */
  private readonly loads = LOAD_COUNTERS.map(() => LOAD_WINDOWS.map(() => 0));

  constructor(
    private readonly broker: Broker,
    private readonly options: SysOptions,
  ) {}

  /** Publishes now, then every interval until stop(). */
  start(): void {
    this.stop();
    this.publish();
    this.next(this.broker.timers.now());
  }

  stop(): void {
    this.broker.timers.cancel(this);
  }

  onTimer(now: number): void {
    this.publish();
    this.next(now);
  }

  private next(now: number): void {
    const ms = this.options.intervalSeconds * 1000;
    if (ms > 0) this.broker.timers.schedule(this, now + ms);
  }

  /** Publishes every value that changed since the last call; returns how many topics were published. */
  publish(): number {
    let published = 0;
    for (const [topic, value] of this.values()) {
      if (this.last.get(topic) === value) continue;
      const message = Message.create(this.broker.core, topic, utf8.encode(value), 0, true);
      // A full arena refuses client messages too; $SYS simply tries again next interval.
      if (!message) break;
      this.broker.router.publish(message, null);
      message.unref();
      this.last.set(topic, value);
      published++;
    }
    return published;
  }

  /** Every $SYS topic and its current value. */
  values(): [string, string][] {
    const s = brokerStats(this.broker);
    this.maximumConnected = Math.max(this.maximumConnected, s.clientsConnected);
    const d = s.dropped;
    const out: [string, string][] = [
      ['version', `arbormq version ${this.options.version}`],
      ['uptime', `${s.uptimeSeconds} seconds`],
      ['clients/connected', s.clientsConnected],
      ['clients/disconnected', s.clientsDisconnected],
      ['clients/total', s.sessions],
      ['clients/maximum', this.maximumConnected],
      ['bytes/received', s.bytesReceived],
      ['bytes/sent', s.bytesSent],
      ['messages/received', s.packetsReceived],
      ['messages/sent', s.packetsSent],
      ['messages/inflight', s.inflight],
      ['publish/messages/received', s.publishReceived],
      ['publish/messages/sent', s.publishSent],
      ['publish/messages/dropped', totalDropped(d)],
      ['publish/messages/refused', s.publishRefused.notAuthorized + s.publishRefused.error],
      ['retained messages/count', s.retained],
      ['subscriptions/count', s.subscriptions],
      ['arena/bytes/used', s.arena.bytesInUse],
      ['arena/bytes/reserved', s.arena.bytesReserved],
      ['arena/bytes/cap', s.arena.cap],
      ['arena/handles/live', s.arena.liveHandles],
      ['arena/errors', s.arena.errors],
      ...s.arena.tiers.map((t, i): [string, number] => [`arena/${ARENA_TIERS[i]}/bytes/used`, t.bytesInUse]),
      ...this.loadValues(s),
      ...(this.options.extra?.() ?? []),
    ].map(([name, value]) => [`$SYS/broker/${name}`, String(value)]);
    return out;
  }

  /**
   * Mosquitto's load averages: the rate over the last interval, in events per minute, folded into
   * exponentially weighted averages over 1, 5 and 15 minutes.
   */
  private loadValues(s: BrokerStats): [string, string][] {
    const now = Date.now();
    const counters = LOAD_COUNTERS.map(([, read]) => read(s));
    const previous = this.previous;
    if (previous && now > previous.at) {
      const seconds = (now - previous.at) / 1000;
      counters.forEach((value, i) => {
        const perMinute = ((value - previous.counters[i]!) * 60) / seconds;
        LOAD_WINDOWS.forEach(([, window], w) => {
          const decay = Math.exp(-seconds / window);
          this.loads[i]![w] = perMinute + decay * (this.loads[i]![w]! - perMinute);
        });
      });
    }
    if (!previous || now > previous.at) this.previous = { at: now, counters };
    const out: [string, string][] = [];
    LOAD_COUNTERS.forEach(([name], i) => {
      LOAD_WINDOWS.forEach(([label], w) => out.push([`load/${name}/${label}`, this.loads[i]![w]!.toFixed(2)]));
    });
    return out;
  }
}

const utf8 = new TextEncoder();

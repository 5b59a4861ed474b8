// A look inside the running broker for tools and playgrounds: sessions with their subscriptions and
// queues, retained messages, and the arena down to a sample of live buffers and their reference
// counts. Plain data throughout, so it crosses from the SharedWorker by structured clone.
import type { Broker } from '../core/broker.js';
import type { Message } from '../core/model/message.js';
import { ARENA_TIERS } from '../core/sys.js';
import { NEVER_EXPIRES, type Session } from '../core/model/session.js';
import type { ArenaTierStats } from '../core/wasm/core.js';

export interface InspectOptions {
  /** At most this many live arena buffers are described (default 64; 0 for none). */
  handles?: number;
  /** Payload bytes decoded (as UTF-8, lossily) for each retained message's preview (default 64). */
  previewBytes?: number;
}

export interface SubscriptionSnapshot {
  /** As subscribed, `$share/{group}/` included. */
  filter: string;
  /** Without any `$share/{group}/` prefix. */
  topicFilter: string;
  /** Share name of a shared subscription. */
  group?: string;
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** 0 when none was given. */
  subscriptionId: number;
}

export interface SessionSnapshot {
  clientId: string;
  online: boolean;
  /** 3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0. */
  protocolVersion: 3 | 4 | 5;
  /** Seconds the session outlives its connection; null = never expires. */
  expiryInterval: number | null;
  subscriptions: SubscriptionSnapshot[];
  /** QoS 1/2 messages waiting for the client (offline, or its receive window is full). */
  queued: number;
  queuedBytes: number;
  /** Messages sent and not yet (fully) acknowledged. */
  inflight: number;
  will: { topic: string; qos: 0 | 1 | 2; retain: boolean; delaySeconds: number } | null;
}

export interface RetainedSnapshot {
  topic: string;
  /** Payload bytes. */
  bytes: number;
  qos: 0 | 1 | 2;
  /** The arena buffer holding topic and payload, and how many holders share it. */
  handle: number;
  refcount: number;
  preview: string;
  /** Seconds left of its Message Expiry Interval, when it has one. */
  expiresInSeconds?: number;
}

/** One live arena buffer. */
export interface HandleSnapshot {
  handle: number;
  refcount: number;
  /** Bytes stored (a message: 2 + topic + payload). */
  bytes: number;
  /** The message's topic, when the buffer is a message the broker knows. */
  topic?: string;
  /**
   * Who holds references that the broker can name: "retained", "queued for {clientId}", "in flight
   * to {clientId}". The rest of `refcount` are writes in progress and output batches.
   */
  holders: string[];
}

export interface ArenaSnapshot {
  tiers: (ArenaTierStats & { name: (typeof ARENA_TIERS)[number] })[];
  liveHandles: number;
  bytesInUse: number;
  bytesReserved: number;
  cap: number;
  errors: number;
  /** The first `options.handles` live buffers, in slot order. */
  handles: HandleSnapshot[];
}

export interface BrokerSnapshot {
  /** Date.now() when it was taken. */
  at: number;
  sessions: SessionSnapshot[];
  retained: RetainedSnapshot[];
  arena: ArenaSnapshot;
}

const DEFAULT_HANDLES = 64;
const DEFAULT_PREVIEW_BYTES = 64;
const utf8 = new TextDecoder();

/** One session as the snapshot describes it. */
export function sessionSnapshot(session: Session): SessionSnapshot {
  const will = session.will;
  return {
    clientId: session.clientId,
    online: session.online,
    protocolVersion: session.version,
    expiryInterval: session.expiryInterval === NEVER_EXPIRES ? null : session.expiryInterval,
    subscriptions: [...session.subscriptions.values()].map((s) => ({
      filter: s.filter,
      topicFilter: s.topicFilter,
      ...(s.group === undefined ? {} : { group: s.group }),
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      subscriptionId: s.subscriptionId,
    })),
    queued: session.queueLength,
    queuedBytes: session.queuedBytes,
    inflight: session.inflightCount,
    will: will && { topic: will.topic, qos: will.qos, retain: will.retain, delaySeconds: will.props.willDelayInterval ?? 0 },
  };
}

/** One retained message as the snapshot describes it, its payload's first `previewBytes` decoded (`now`: performance.now()). */
export function retainedSnapshot(broker: Broker, message: Message, now: number, previewBytes = DEFAULT_PREVIEW_BYTES): RetainedSnapshot {
  const core = broker.core;
  const expiresIn = message.remainingExpiry(now);
  // The preview is decoded from wasm memory in place: a large retained payload is not copied whole.
  const start = message.topicPtr() + message.topicLength;
  return {
    topic: message.topic(),
    bytes: message.payloadLength,
    qos: message.qos,
    handle: message.handle,
    refcount: core.refcount(message.handle),
    preview: utf8.decode(core.bytes().subarray(start, start + Math.min(previewBytes, message.payloadLength))),
    ...(expiresIn === undefined ? {} : { expiresInSeconds: expiresIn }),
  };
}

/** A snapshot of `broker`'s state; costs a walk over every session, queued message, retained message and live buffer. */
export function inspectBroker(broker: Broker, options: InspectOptions = {}): BrokerSnapshot {
  const core = broker.core;
  const now = performance.now();
  const previewBytes = options.previewBytes ?? DEFAULT_PREVIEW_BYTES;
  const limit = options.handles ?? DEFAULT_HANDLES;
  // Only the sampled buffers get their holders named: a long queue costs a walk, not a map entry per message.
  const sample = limit > 0 ? core.liveHandles().slice(0, limit) : [];
  const known = new Map<number, { message: Message | null; holders: string[] }>(sample.map((h) => [h, { message: null, holders: [] }]));
  const hold = (message: Message | null, holder: string): void => {
    const entry = message && message.handle !== 0 ? known.get(message.handle) : undefined;
    if (!entry) return;
    entry.message = message;
    entry.holders.push(holder);
  };

  const sessions: SessionSnapshot[] = [];
  for (const session of broker.sessions.values()) {
    if (session.queueLength > 0) for (const delivery of session.queue) hold(delivery.message, `queued for ${session.clientId}`);
    for (const delivery of session.inflightList()) hold(delivery.message, `in flight to ${session.clientId}`);
    sessions.push(sessionSnapshot(session));
  }

  const retained: RetainedSnapshot[] = [];
  for (const message of broker.retained.all()) {
    hold(message, 'retained');
    retained.push(retainedSnapshot(broker, message, now, previewBytes));
  }
  retained.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));

  const stats = core.arenaStats();
  const handles: HandleSnapshot[] = sample.map((handle) => {
    const entry = known.get(handle)!;
    return {
      handle,
      refcount: core.refcount(handle),
      bytes: core.length(handle),
      ...(entry.message ? { topic: entry.message.topic() } : {}),
      holders: entry.holders,
    };
  });

  return {
    at: Date.now(),
    sessions: sessions.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0)),
    retained,
    arena: {
      tiers: stats.tiers.map((t, i) => ({ ...t, name: ARENA_TIERS[i]! })),
      liveHandles: stats.liveHandles,
      bytesInUse: stats.bytesInUse,
      bytesReserved: stats.bytesReserved,
      cap: stats.cap,
      errors: stats.errors,
      handles,
    },
  };
}

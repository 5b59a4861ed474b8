import type { ProtocolVersion } from '../codec/constants.js';
import type { QoS, Subscription } from '../codec/packets.js';

/**
 * What the broker persists, as plain data. Times are wall-clock milliseconds (Date.now()) so they
 * mean the same after a restart; 0 means "none".
 */
export interface StoredMessage {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** Encoded 5.0 properties forwarded to subscribers. */
  forward: Uint8Array | null;
  expiresAt: number;
}

export interface StoredSubscription extends Subscription {
  subscriptionId: number;
}

export interface StoredWill extends StoredMessage {
  delaySeconds: number;
  /** 5.0 Message Expiry Interval of the will, counted from when it is published. */
  messageExpiryInterval: number | undefined;
}

export interface StoredSession {
  clientId: string;
  /** The user name the session belongs to, null = anonymous; absent in records written before owners were kept. */
  owner?: string | null;
  version: ProtocolVersion;
  /** Seconds after disconnect; 0xFFFFFFFF = never. */
  expiryInterval: number;
  /** When the last connection closed; 0 while connected (a crash then counts from the restart). */
  disconnectedAt: number;
  subscriptions: StoredSubscription[];
  /** A will still owed after an abnormal close (the will delay was running). */
  will: StoredWill | null;
}

/** One message a session still has to deliver or finish delivering, in `seq` order. */
export interface StoredDelivery {
  clientId: string;
  seq: number;
  messageId: string;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | null;
  /** 0 while queued; the packet identifier once sent. */
  packetId: number;
  /** PUBREC received: only PUBREL / PUBCOMP remain. */
  released: boolean;
  /**
   * The message body itself when this delivery is its only stored holder — one record instead of
   * two; `messageId` still names it (another delivery may refer to it after a restart).
   */
  message?: StoredMessage;
}

export interface StoredState {
  sessions: StoredSession[];
  retained: StoredMessage[];
  messages: Map<string, StoredMessage>;
  deliveries: StoredDelivery[];
  /** Incoming QoS 2 packet identifiers awaiting PUBREL, per client. */
  incomingQos2: Map<string, number[]>;
  /** Marks, by name (see StoreBatch.marks). */
  marks: Map<string, string>;
}

/**
 * Names one delivery in StoreBatch.deliveries. The broker uses one object per delivery for all of its
 * changes, so a batch holds each delivery once and stores can track it without building strings.
 */
export interface DeliveryKey {
  readonly clientId: string;
  readonly seq: number;
}

/** Changes made during one tick, written together (group commit). */
export interface StoreBatch {
  sessions: Map<string, StoredSession | null>;
  retained: Map<string, StoredMessage | null>;
  messages: Map<string, StoredMessage | null>;
  deliveries: Map<DeliveryKey, StoredDelivery | null>;
  /** Keyed `${clientId}\0${packetId}`: true = awaiting PUBREL, null = done. */
  incomingQos2: Map<string, true | null>;
  /**
   * Small named values a host layer keeps durable together with the changes they describe (a
   * cluster node's per-origin high-water mark of the forwards it applied); null = delete.
   */
  marks: Map<string, string | null>;
}

export const emptyBatch = (): StoreBatch => ({
  sessions: new Map(),
  retained: new Map(),
  messages: new Map(),
  deliveries: new Map(),
  incomingQos2: new Map(),
  marks: new Map(),
});

export const emptyState = (): StoredState => ({ sessions: [], retained: [], messages: new Map(), deliveries: [], incomingQos2: new Map(), marks: new Map() });

export const batchSize = (b: StoreBatch): number =>
  b.sessions.size + b.retained.size + b.messages.size + b.deliveries.size + b.incomingQos2.size + b.marks.size;

/**
 * Durable broker state. `write` applies a whole batch atomically and resolves once it is durable;
 * the broker acknowledges QoS 1/2 only after that. Implementations: MemoryStore and VolatileStore
 * (here), LevelDB (Node), IndexedDB (browser).
 */
export interface Store {
  open(): Promise<void>;
  load(): Promise<StoredState>;
  write(batch: StoreBatch): Promise<void>;
  close(): Promise<void>;
}

/**
 * The store of a broker whose state ends with it (`--memory`, an in-tab broker without IndexedDB):
 * nothing was kept before it started, and nothing it writes could be read by a later start — so a
 * write keeps nothing and is done at once. Copying every batch into maps, as MemoryStore does, cost
 * such a broker most of its allocations: its garbage collections made the 99th percentile of QoS 1
 * acknowledgements several times Mosquitto's (bench/RESULTS.md).
 */
export class VolatileStore implements Store {
  async open(): Promise<void> {}

  async load(): Promise<StoredState> {
    return emptyState();
  }

  async write(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Keeps state in maps, for a broker started again on the same store in one process (tests, embedders). */
export class MemoryStore implements Store {
  private sessions = new Map<string, StoredSession>();
  private retained = new Map<string, StoredMessage>();
  private messages = new Map<string, StoredMessage>();
  private deliveries = new Map<string, StoredDelivery>();
  private incomingQos2 = new Set<string>();
  private marks = new Map<string, string>();

  async open(): Promise<void> {}

  async load(): Promise<StoredState> {
    const incoming = new Map<string, number[]>();
    for (const key of this.incomingQos2) {
      const [clientId, packetId] = key.split('\0') as [string, string];
      (incoming.get(clientId) ?? incoming.set(clientId, []).get(clientId)!).push(Number(packetId));
    }
    return {
      sessions: [...this.sessions.values()].map((s) => structuredClone(s)),
      retained: [...this.retained.values()].map((m) => structuredClone(m)),
      messages: new Map([...this.messages].map(([k, m]) => [k, structuredClone(m)])),
      deliveries: [...this.deliveries.values()].sort(bySessionAndSeq).map((d) => structuredClone(d)),
      incomingQos2: incoming,
      marks: new Map(this.marks),
    };
  }

  async write(batch: StoreBatch): Promise<void> {
    apply(this.sessions, batch.sessions);
    apply(this.retained, batch.retained);
    apply(this.messages, batch.messages);
    for (const [{ clientId, seq }, delivery] of batch.deliveries) {
      const key = `${clientId}\u0000${seq}`;
      if (delivery === null) this.deliveries.delete(key);
      else this.deliveries.set(key, structuredClone(delivery));
    }
    for (const [key, value] of batch.incomingQos2) {
      if (value) this.incomingQos2.add(key);
      else this.incomingQos2.delete(key);
    }
    apply(this.marks, batch.marks);
  }

  async close(): Promise<void> {}
}

function apply<T>(target: Map<string, T>, changes: Map<string, T | null>): void {
  for (const [key, value] of changes) {
    if (value === null) target.delete(key);
    else target.set(key, structuredClone(value));
  }
}

export function bySessionAndSeq(a: StoredDelivery, b: StoredDelivery): number {
  return a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.seq - b.seq;
}

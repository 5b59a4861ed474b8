import type { StoredDelivery, StoredMessage, StoredSession } from '../../core/model/store.js';
import { FrameReader } from './frame.js';
import { decodeChanges, emptyChanges, encodeChanges, type ReplicaChanges } from './replica-codec.js';

/** Where a node keeps the replicas it holds for other nodes: one log per owner (their message ids are theirs). */
export interface ReplicaStores {
  /** Owners this node held replicas for when it stopped. */
  owners(): Promise<string[]>;
  open(owner: string): ReplicaLog;
}

/** The records of one owner's replicas: frames as they came, and now and then a snapshot in their place. */
export interface ReplicaLog {
  /** The records written before this process (empty for a new log), oldest first. */
  read(): Promise<Buffer[]>;
  /** Resolves once the record is durable. */
  append(record: Buffer): Promise<void>;
  /** Replaces every record with the one `snapshot` builds when the writes before it are done. */
  replace(snapshot: () => Buffer): Promise<void>;
  /** What the records take now. */
  readonly bytes: number;
  close(): Promise<void>;
}

/** For a node that keeps its own state in memory: its replicas live and die with the process. */
export const memoryReplicaLog = (): ReplicaLog => ({
  read: async () => [],
  append: async () => undefined,
  replace: async () => undefined,
  bytes: 0,
  close: async () => undefined,
});

/** One replicated session as its buddy has it. */
export interface ReplicaSession {
  session: StoredSession;
  /** In seq order. */
  deliveries: StoredDelivery[];
  /** Bodies the deliveries refer to that are not inline. */
  bodies: Map<string, StoredMessage>;
  incomingQos2: number[];
}

/** A log this much larger than its last snapshot is replaced by a new one. */
const COMPACT_MIN_BYTES = 4 * 1024 * 1024;

/**
 * The sessions one owner node replicates to this node: kept in memory (to hand them over at
 * failover) and in a log (to survive this node's restart), where each frame is written as it came
 * and the log is compacted into a snapshot of the memory once it grows.
 */
export class OwnerReplica {
  private readonly sessions = new Map<string, StoredSession>();
  private readonly deliveries = new Map<string, Map<number, StoredDelivery>>();
  private readonly incoming = new Map<string, Set<number>>();
  private readonly messages = new Map<string, StoredMessage>();
  private readonly loaded: Promise<void>;
  /** The log was read: changes apply now, not after what it held. */
  private isLoaded = false;
  /** Settles once the last write is done (or failed). */
  private tail: Promise<void>;
  private snapshotBytes = 0;
  private compacting = false;

  constructor(
    readonly owner: string,
    private readonly log: ReplicaLog,
  ) {
    this.loaded = this.load();
    this.tail = this.loaded;
  }

  private async load(): Promise<void> {
    for (const record of await this.log.read()) this.change(decodeChanges(new FrameReader(record)));
    this.snapshotBytes = this.log.bytes;
    this.isLoaded = true;
  }

  /** Settles once everything applied so far is durable (or failed). */
  get ready(): Promise<void> {
    return this.tail;
  }

  get size(): number {
    return this.sessions.size;
  }

  clientIds(): string[] {
    return [...this.sessions.keys()];
  }

  has(clientId: string): boolean {
    return this.sessions.has(clientId);
  }

  /** Applies an owner's frame (`changes`, decoded from `frame`); resolves once it is durable here. */
  apply(changes: ReplicaChanges, frame: Buffer): Promise<void> {
    // What came before this process restarted goes first.
    if (!this.isLoaded) return this.loaded.then(() => this.apply(changes, frame));
    this.change(changes);
    return this.write(frame);
  }

  /** Hands a session over (to be installed as a live one) and forgets it here. */
  take(clientId: string): ReplicaSession | null {
    const session = this.sessions.get(clientId);
    if (!session) return null;
    const deliveries = [...(this.deliveries.get(clientId)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
    const bodies = new Map<string, StoredMessage>();
    for (const d of deliveries) {
      const body = d.message ?? this.messages.get(d.messageId);
      if (!d.released && body) bodies.set(d.messageId, body);
    }
    const taken: ReplicaSession = { session, deliveries, bodies, incomingQos2: [...(this.incoming.get(clientId) ?? [])] };
    // Forgotten in memory at once; a failed write leaves it in the log, and the next start has it again.
    this.drop([clientId]).catch(() => undefined);
    return taken;
  }

  /** Forgets sessions (no longer this node's to keep). */
  drop(clientIds: string[]): Promise<void> {
    if (!this.isLoaded) return this.loaded.then(() => this.drop(clientIds));
    const changes = emptyChanges(0);
    changes.clear.push(...clientIds);
    this.change(changes);
    return this.write(encodeChanges(changes));
  }

  async close(): Promise<void> {
    await this.tail;
    await this.log.close();
  }

  private write(record: Buffer): Promise<void> {
    const written = this.log.append(record);
    this.tail = written.then(
      () => this.compactIfDue(),
      () => undefined,
    );
    return written;
  }

  private compactIfDue(): void {
    if (this.compacting || this.log.bytes < Math.max(COMPACT_MIN_BYTES, 2 * this.snapshotBytes)) return;
    this.compacting = true;
    this.log
      .replace(() => {
        const snapshot = encodeChanges(this.snapshot());
        this.snapshotBytes = snapshot.length;
        return snapshot;
      })
      // A failed compaction leaves the log as it was: it is tried again after the next write.
      .catch(() => undefined)
      .finally(() => (this.compacting = false));
  }

  /** Everything kept, as one frame's changes. */
  private snapshot(): ReplicaChanges {
    const c = emptyChanges(0);
    for (const [clientId, s] of this.sessions) c.sessions.set(clientId, s);
    for (const [id, m] of this.messages) c.messages.set(id, m);
    for (const list of this.deliveries.values()) c.deliveries.push(...list.values());
    for (const [clientId, ids] of this.incoming) for (const packetId of ids) c.incomingQos2.set(`${clientId}\u0000${packetId}`, true);
    return c;
  }

  private change(changes: ReplicaChanges): void {
    for (const clientId of changes.clear) this.forget(clientId);
    for (const [clientId, s] of changes.sessions) {
      if (s) this.sessions.set(clientId, s);
      else this.forget(clientId);
    }
    for (const [id, m] of changes.messages) {
      if (m) this.messages.set(id, m);
      else this.messages.delete(id);
    }
    for (const d of changes.deliveries) {
      if ('gone' in d) this.deliveries.get(d.clientId)?.delete(d.seq);
      else this.deliveriesOf(d.clientId).set(d.seq, d);
    }
    for (const [key, v] of changes.incomingQos2) {
      const [clientId, packetId] = key.split('\u0000') as [string, string];
      if (v) (this.incoming.get(clientId) ?? this.incoming.set(clientId, new Set()).get(clientId)!).add(Number(packetId));
      else this.incoming.get(clientId)?.delete(Number(packetId));
    }
  }

  private forget(clientId: string): void {
    this.sessions.delete(clientId);
    for (const d of this.deliveries.get(clientId)?.values() ?? []) {
      // A body of its own whose holders were all this session's goes with them.
      if (!d.message && d.messageId && !this.referencedElsewhere(d.messageId, clientId)) this.messages.delete(d.messageId);
    }
    this.deliveries.delete(clientId);
    this.incoming.delete(clientId);
  }

  private referencedElsewhere(messageId: string, except: string): boolean {
    if (!this.messages.has(messageId)) return true;
    for (const [clientId, list] of this.deliveries) {
      if (clientId === except) continue;
      for (const d of list.values()) if (d.messageId === messageId) return true;
    }
    return false;
  }

  private deliveriesOf(clientId: string): Map<number, StoredDelivery> {
    return this.deliveries.get(clientId) ?? this.deliveries.set(clientId, new Map()).get(clientId)!;
  }
}

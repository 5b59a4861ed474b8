import { emptyBatch, type Store, type StoreBatch, type StoredDelivery, type StoredMessage, type StoredSession } from '../../core/model/store.js';
import type { ReplicaChanges } from './replica-codec.js';

/** Where a node keeps the replicas it holds for other nodes: one Store per owner (their message ids are theirs). */
export interface ReplicaStores {
  /** Owners this node held replicas for when it stopped. */
  owners(): Promise<string[]>;
  open(owner: string): Store;
}

/** One replicated session as its buddy has it. */
export interface ReplicaSession {
  session: StoredSession;
  /** In seq order. */
  deliveries: StoredDelivery[];
  /** Bodies the deliveries refer to that are not inline. */
  bodies: Map<string, StoredMessage>;
  incomingQos2: number[];
}

type DeliveryKey = { clientId: string; seq: number };

/** Changes not written yet: they go to the store together once the write running now ends. */
class PendingWrite {
  readonly batch = emptyBatch();
  /** One key object per delivery, so that a later change of it replaces an earlier one in the batch. */
  private readonly keys = new Map<string, DeliveryKey>();
  written: Promise<void> = Promise.resolve();

  readonly key = (clientId: string, seq: number): DeliveryKey => {
    const k = `${clientId}\u0000${seq}`;
    let key = this.keys.get(k);
    if (!key) this.keys.set(k, (key = { clientId, seq }));
    return key;
  };
}

/**
 * The sessions one owner node replicates to this node: kept in memory (to hand them over at
 * failover) and in this node's own store (to survive its restart). Changes apply in the order they
 * came; those that come while a write runs are written together after it (one write, one sync).
 */
export class OwnerReplica {
  private readonly sessions = new Map<string, StoredSession>();
  private readonly deliveries = new Map<string, Map<number, StoredDelivery>>();
  private readonly incoming = new Map<string, Set<number>>();
  private readonly messages = new Map<string, StoredMessage>();
  private tail: Promise<void>;
  private pending: PendingWrite | null = null;

  constructor(
    readonly owner: string,
    private readonly store: Store,
  ) {
    this.tail = this.load();
  }

  private async load(): Promise<void> {
    await this.store.open();
    const state = await this.store.load();
    for (const s of state.sessions) this.sessions.set(s.clientId, s);
    for (const d of state.deliveries) this.deliveriesOf(d.clientId).set(d.seq, d);
    for (const [clientId, ids] of state.incomingQos2) this.incoming.set(clientId, new Set(ids));
    for (const [id, m] of state.messages) this.messages.set(id, m);
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

  /** Applies an owner's frame; resolves once it is durable here. */
  apply(changes: ReplicaChanges): Promise<void> {
    const { batch, key: deliveryKey, written } = this.nextWrite();
    for (const clientId of changes.clear) this.forget(clientId, batch, deliveryKey);
    for (const [clientId, s] of changes.sessions) {
      batch.sessions.set(clientId, s);
      if (s) this.sessions.set(clientId, s);
      else this.forget(clientId, batch, deliveryKey);
    }
    for (const [id, m] of changes.messages) {
      batch.messages.set(id, m);
      if (m) this.messages.set(id, m);
      else this.messages.delete(id);
    }
    for (const d of changes.deliveries) {
      batch.deliveries.set(deliveryKey(d.clientId, d.seq), 'gone' in d ? null : d);
      if ('gone' in d) this.deliveries.get(d.clientId)?.delete(d.seq);
      else this.deliveriesOf(d.clientId).set(d.seq, d);
    }
    for (const [key, v] of changes.incomingQos2) {
      batch.incomingQos2.set(key, v);
      const [clientId, packetId] = key.split('\u0000') as [string, string];
      if (v) (this.incoming.get(clientId) ?? this.incoming.set(clientId, new Set()).get(clientId)!).add(Number(packetId));
      else this.incoming.get(clientId)?.delete(Number(packetId));
    }
    return written;
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
    // Forgotten in memory at once; a failed write leaves a copy on disk that the next start loads again.
    this.drop([clientId]).catch(() => undefined);
    return taken;
  }

  /** Forgets sessions (no longer this node's to keep). */
  drop(clientIds: string[]): Promise<void> {
    const { batch, key, written } = this.nextWrite();
    for (const clientId of clientIds) this.forget(clientId, batch, key);
    return written;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.store.close();
  }

  /** The write that has not started yet, to add changes to: it starts once the running one ends. */
  private nextWrite(): PendingWrite {
    if (this.pending) return this.pending;
    const pending = new PendingWrite();
    pending.written = this.tail.then(() => {
      if (this.pending === pending) this.pending = null;
      return this.store.write(pending.batch);
    });
    this.tail = pending.written.catch(() => undefined);
    this.pending = pending;
    return pending;
  }

  private forget(clientId: string, batch: StoreBatch, key: (clientId: string, seq: number) => DeliveryKey): void {
    if (this.sessions.delete(clientId)) batch.sessions.set(clientId, null);
    for (const d of this.deliveries.get(clientId)?.values() ?? []) {
      batch.deliveries.set(key(clientId, d.seq), null);
      // A body of its own whose holders were all this session's goes with them.
      if (!d.message && d.messageId && !this.referencedElsewhere(d.messageId, clientId)) {
        this.messages.delete(d.messageId);
        batch.messages.set(d.messageId, null);
      }
    }
    this.deliveries.delete(clientId);
    for (const packetId of this.incoming.get(clientId) ?? []) batch.incomingQos2.set(`${clientId}\u0000${packetId}`, null);
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

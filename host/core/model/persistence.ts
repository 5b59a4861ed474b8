import type { Message } from './message.js';
import type { Logger } from './options.js';
import { afterIo } from './schedule.js';
import type { Delivery, Session } from './session.js';
import {
  batchSize,
  type DeliveryKey,
  emptyBatch,
  type Store,
  type StoreBatch,
  type StoredDelivery,
  type StoredMessage,
  type StoredSession,
} from './store.js';

/**
 * What persistence keeps about a message whose body a stored delivery needs (Message.storage):
 * nothing else reads or changes it.
 */
export class BodyRecord {
  /** Stored deliveries referring to the body. */
  refs = 1;
  /** The stored delivery whose record carries the body inline, if any. */
  inlineHolder: Delivery | null = null;
  /** Stored in the batch being collected, the body not yet copied out of the arena (see inlineBodies). */
  pending = false;

  constructor(
    /** The body's id in the store. */
    readonly id: string,
    /** Persistence batch its own record was put in. */
    public generation: number,
    /** The first stored delivery of the message: the one its body may be inlined into. */
    public firstStored: Delivery | null,
  ) {}
}

/** What persistence keeps about a delivery of a stored session (Delivery.storage): its record's key and batch. */
export class DeliveryRecord {
  constructor(
    /** Its record's key in StoreBatch.deliveries: one object for all of its changes. */
    readonly key: DeliveryKey,
    /** Persistence batch the record was first put in; 0 = restored, long durable. */
    readonly generation: number,
  ) {}
}

/** Runs once the batch holding a change is durable; `error` when writing it failed. */
export type DurableCallback = (error?: Error) => void;

/**
 * Sees every batch as it is handed to the store (a cluster replicating sessions to a second node);
 * the batch's callbacks also wait for what it returns, and get its error if it rejects.
 */
export type Replicator = (batch: StoreBatch) => Promise<void> | null;

/**
 * Collects the state changes of one tick into a batch and writes it to the Store in one go
 * (group commit); callbacks waiting for durability (QoS 1/2 acknowledgements) run when their batch
 * is written, in order. A failed batch is merged into the next one, so the store catches up once
 * writing works again. Sessions with expiry 0 live and die with their connection and are not stored.
 */
export class Persistence {
  private batch = emptyBatch();
  private callbacks: DurableCallback[] = [];
  private scheduled = false;
  private inFlight = 0;
  /**
   * store.write calls running: at most MAX_WRITES_IN_FLIGHT. The next batch collects while one runs
   * and goes out when it ends — the busier the broker, the bigger the batches.
   */
  private writesActive = 0;
  /**
   * Number of the batch being collected. A record created in this batch and deleted before it is
   * written never reaches the store (a delivery acknowledged within one commit interval).
   */
  private generation = 1;
  private readonly incomingGeneration = new Map<string, number>();
  /**
   * Messages first stored in the batch being collected (candidates for inlining); an entry whose
   * BodyRecord is no longer pending does not need its body written.
   */
  private pendingBodies: Message[] = [];
  private writing: Promise<void> = Promise.resolve();
  /** The callbacks of the last batch handed to the store have run (they run in commit order). */
  private answered: Promise<void> = Promise.resolve();
  /** Batches handed to the store whose callbacks have not run yet. */
  private unanswered = 0;
  /**
   * Batches whose replica is not confirmed yet: the next batch waits for them (and grows meanwhile),
   * unless a commit is wanted now (nudge: a buddy left and its sessions must go to another; drain).
   */
  private replicasPending = 0;
  private urgent = false;
  private retry: StoreBatch | null = null;
  private retryDelay = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Message ids are this counter in base 36 (short strings, cheap to build and to write). */
  private messageCounter = 0;
  /** Last write failed: the store is unhealthy until a write succeeds. */
  failing = false;
  /** Every mark as it will be once what is collected is written (restored from the store at start). */
  readonly marks = new Map<string, string>();
  /** Set when the batches are replicated too: their callbacks wait for the replica as well. */
  replicator: Replicator | null = null;

  constructor(
    readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Records the session's current state (or its removal when it is not persistent). */
  saveSession(session: Session): void {
    if (session.expiryInterval === 0) {
      if (!session.stored) return;
      session.stored = false;
      this.batch.sessions.set(session.clientId, null);
    } else {
      session.stored = true;
      this.batch.sessions.set(session.clientId, toStoredSession(session));
    }
    this.schedule();
  }

  deleteSession(session: Session): void {
    if (!session.stored) return;
    session.stored = false;
    this.batch.sessions.set(session.clientId, null);
    this.schedule();
  }

  saveRetained(message: Message): void {
    this.batch.retained.set(message.topic(), toStoredMessage(message));
    this.schedule();
  }

  deleteRetained(topic: string): void {
    this.batch.retained.set(topic, null);
    this.schedule();
  }

  /** Records a delivery of a persistent session (new, now in flight, or released by PUBREC). */
  saveDelivery(session: Session, delivery: Delivery): void {
    if (!session.stored) return;
    let storage = delivery.storage;
    if (storage === null) {
      storage = delivery.storage = new DeliveryRecord({ clientId: session.clientId, seq: delivery.seq }, this.generation);
      if (delivery.message) this.refMessage(delivery.message, delivery);
    } else if (delivery.released && delivery.message) {
      this.unrefMessage(delivery.message, delivery);
    }
    const message = delivery.released ? null : delivery.message!;
    const record: StoredDelivery = {
      clientId: session.clientId,
      seq: delivery.seq,
      messageId: message ? message.storage!.id : '',
      qos: delivery.qos,
      retain: delivery.retain,
      subscriptionIds: delivery.subscriptionIds,
      packetId: delivery.packetId,
      released: delivery.released,
    };
    // Rewriting the record that carries the body inline must keep carrying it.
    if (message && message.storage!.inlineHolder === delivery) record.message = toStoredMessage(message);
    this.batch.deliveries.set(storage.key, record);
    this.schedule();
  }

  deleteDelivery(delivery: Delivery): void {
    const storage = delivery.storage;
    if (storage === null) return;
    delivery.storage = null;
    if (!delivery.released && delivery.message) this.unrefMessage(delivery.message, delivery);
    if (storage.generation === this.generation) this.batch.deliveries.delete(storage.key);
    else this.batch.deliveries.set(storage.key, null);
    this.schedule();
  }

  saveIncomingQos2(session: Session, packetId: number): void {
    if (!session.stored) return;
    const key = incomingKey(session.clientId, packetId);
    this.incomingGeneration.set(key, this.generation);
    this.batch.incomingQos2.set(key, true);
    this.schedule();
  }

  deleteIncomingQos2(session: Session, packetId: number): void {
    if (!session.stored) return;
    const key = incomingKey(session.clientId, packetId);
    const generation = this.incomingGeneration.get(key);
    this.incomingGeneration.delete(key);
    if (generation === this.generation) this.batch.incomingQos2.delete(key);
    else this.batch.incomingQos2.set(key, null);
    this.schedule();
  }

  /** Sets (null: deletes) a mark, written in the same group commit as the changes made with it. */
  saveMark(name: string, value: string | null): void {
    if (value === null) this.marks.delete(name);
    else this.marks.set(name, value);
    this.batch.marks.set(name, value);
    this.schedule();
  }

  /**
   * A message body is stored once, however many deliveries refer to it: as its own record, or —
   * when one delivery is its only holder at commit time (the common case) — inside that delivery's
   * record, which halves the writes per message (see inlineBodies).
   */
  private refMessage(message: Message, delivery: Delivery): void {
    if (message.storage !== null) {
      message.storage.refs++;
      return;
    }
    const storage = (message.storage = new BodyRecord((++this.messageCounter).toString(36), this.generation, delivery));
    // Copied out of the arena only at commit, if still needed then (see inlineBodies).
    storage.pending = true;
    this.pendingBodies.push(message);
  }

  private unrefMessage(message: Message, delivery: Delivery): void {
    const storage = message.storage!;
    if (storage.firstStored === delivery) storage.firstStored = null;
    if (--storage.refs > 0) {
      if (storage.inlineHolder === delivery) {
        // The record carrying the body goes while others still need it: the body gets its own record.
        storage.inlineHolder = null;
        storage.generation = this.generation;
        this.batch.messages.set(storage.id, toStoredMessage(message));
      }
      return;
    }
    if (storage.pending) {
      // Never left memory.
      storage.pending = false;
    } else if (storage.inlineHolder) {
      // Deleting the record that carries it deletes it.
    } else if (storage.generation === this.generation) {
      this.batch.messages.delete(storage.id);
    } else {
      this.batch.messages.set(storage.id, null);
    }
    message.storage = null;
  }

  /**
   * At commit, the bodies still needed are copied out of the arena: inside the record of their only
   * holder when that record is in the same batch, else as records of their own.
   */
  private inlineBodies(): void {
    for (const message of this.pendingBodies) {
      const storage = message.storage;
      if (storage === null || !storage.pending) continue;
      storage.pending = false;
      const body = toStoredMessage(message);
      const holder = storage.firstStored;
      const record = holder?.storage ? this.batch.deliveries.get(holder.storage.key) : undefined;
      if (storage.refs === 1 && holder && record && !record.released) {
        record.message = body;
        storage.inlineHolder = holder;
      } else {
        this.batch.messages.set(storage.id, body);
      }
    }
    this.pendingBodies = [];
  }

  /** Changes collected and not yet handed to a write. */
  private get collected(): number {
    return batchSize(this.batch) + this.pendingBodies.length;
  }

  /** Deletes a message record nothing refers to any more (found on restart). */
  deleteMessageRecord(id: string): void {
    this.batch.messages.set(id, null);
    this.schedule();
  }

  /** After a restart: deletes records of sessions that no longer exist and message bodies nothing refers to. */
  deleteLeftovers(
    deliveries: Map<string, StoredDelivery[]>,
    incomingQos2: Map<string, number[]>,
    bodies: Map<string, StoredMessage>,
    adopted: Map<string, Message>,
  ): void {
    for (const [clientId, list] of deliveries) for (const d of list) this.batch.deliveries.set({ clientId, seq: d.seq }, null);
    for (const [clientId, ids] of incomingQos2) for (const id of ids) this.batch.incomingQos2.set(incomingKey(clientId, id), null);
    for (const id of bodies.keys()) if (!adopted.has(id)) this.batch.messages.set(id, null);
    this.schedule();
  }

  /** After a restart: new message ids continue past those in the store (older versions' ids, not base 36, cannot collide). */
  continueIdsAfter(ids: Iterable<string>): void {
    for (const id of ids) if (/^[0-9a-z]{1,10}$/.test(id)) this.messageCounter = Math.max(this.messageCounter, parseInt(id, 36));
  }

  /**
   * Restart: a delivery loaded from the store (of a stored session). Unless released it refers to
   * `message`, loaded from the body stored under `messageId`.
   */
  adoptDelivery(delivery: Delivery, clientId: string, message: Message | null, messageId: string): void {
    delivery.storage = new DeliveryRecord({ clientId, seq: delivery.seq }, 0);
    if (!message) return;
    if (message.storage) message.storage.refs++;
    else message.storage = new BodyRecord(messageId, 0, null);
  }

  /**
   * Restart: the message's body came inside `holder`'s record. If that delivery is gone (its session
   * ended while the broker was down) the body moves to a record of its own for the others.
   */
  adoptInlineBody(message: Message, holder: Delivery | null): void {
    const storage = message.storage!;
    storage.inlineHolder = holder;
    if (holder) return;
    storage.generation = this.generation;
    this.batch.messages.set(storage.id, toStoredMessage(message));
    this.schedule();
  }

  /**
   * Runs `callback` once every change made so far is durable — at once when nothing is pending.
   * Callbacks run in the order they were registered.
   */
  whenDurable(callback: DurableCallback): void {
    if (this.collected === 0 && this.unanswered === 0 && this.callbacks.length === 0 && !this.retry) {
      callback();
      return;
    }
    this.callbacks.push(callback);
    this.schedule();
  }

  /** The store holds, or is about to hold, a record of the delivery (its session is persistent). */
  isStored(delivery: Delivery): boolean {
    return delivery.storage !== null;
  }

  /**
   * Runs `then` once every change made so far is durable; a failed write makes it wait for the
   * retry that merges the batch into a later one.
   */
  whenWritten(then: () => void): void {
    const wait = (error?: Error): void => {
      if (error) this.whenDurable(wait);
      else then();
    };
    this.whenDurable(wait);
  }

  /** whenWritten() for what `session` recorded: at once for a session that is not stored. */
  afterCommit(session: Session, then: () => void): void {
    if (session.stored) this.whenWritten(then);
    else then();
  }

  /** Bytes of writes not yet durable (back-pressure and health reporting). */
  get pending(): number {
    return this.collected + this.inFlight;
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer) return;
    this.scheduled = true;
    afterIo(() => void this.commit());
  }

  /** After a failure, the next attempt waits (100 ms doubling to 5 s) instead of spinning on a broken disk. */
  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryDelay = Math.min(5000, this.retryDelay === 0 ? 100 : this.retryDelay * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.commit();
    }, this.retryDelay);
    this.retryTimer.unref?.();
  }

  /**
   * Starts writing what is pending unless two writes are running — then what accumulates goes out
   * when one ends. Callbacks run in commit order whatever order the writes finish in. Resolves when
   * the write started here (or the last running one) is done.
   */
  commit(): Promise<void> {
    this.scheduled = false;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.writesActive >= MAX_WRITES_IN_FLIGHT || (this.replicasPending > 0 && !this.urgent)) return this.writing;
    if (this.collected === 0 && this.callbacks.length === 0 && !this.retry) return this.writing;
    this.inlineBodies();
    const batch = this.retry ? mergeBatches(this.retry, this.batch) : this.batch;
    this.retry = null;
    const callbacks = this.callbacks;
    this.batch = emptyBatch();
    this.callbacks = [];
    this.generation++;
    const size = batchSize(batch);
    this.inFlight += size;
    this.writesActive++;
    const previous = this.writing;
    const written = size > 0 ? this.store.write(batch).then(() => undefined, asError) : Promise.resolve(undefined);
    // The replica is written alongside; the next batch goes out once both are done.
    this.urgent = false;
    const replicated = this.replicator ? this.replicate(this.replicator, batch) : undefined;
    if (replicated) {
      this.replicasPending++;
      void replicated.then(() => {
        this.replicasPending--;
        this.commitMore();
      });
    }
    let failure: Error | undefined;
    this.writing = (async () => {
      failure = await written;
      await previous;
      if (failure) {
        if (!this.failing) this.log('error', 'store write failed', { error: failure.message });
        this.failing = true;
        // Keep the changes: the next batch writes them too, so the store converges once writes work.
        this.retry = this.retry ? mergeBatches(this.retry, batch) : batch;
        this.scheduleRetry();
      } else if (this.failing && !this.retry) {
        this.log('info', 'store writes work again');
        this.failing = false;
        this.retryDelay = 0;
      }
      this.inFlight -= size;
      this.writesActive--;
      if (this.urgent) this.commitMore();
    })();
    const answeredBefore = this.answered;
    this.unanswered++;
    this.answered = (async () => {
      await this.writing;
      const replicaFailure = replicated ? await replicated : undefined;
      await answeredBefore;
      this.unanswered--;
      for (const callback of callbacks) callback(failure ?? replicaFailure);
      this.commitMore();
    })();
    return this.writing;
  }

  /** The replicator's answer; one that throws fails this batch instead of leaving every later commit waiting. */
  private replicate(replicator: Replicator, batch: StoreBatch): Promise<Error | undefined> | undefined {
    try {
      return replicator(batch)?.then(() => undefined, asError);
    } catch (error) {
      this.log('error', 'replication failed', { error: asError(error).message });
      return Promise.resolve(asError(error));
    }
  }

  /** Makes a commit run soon even with nothing to write: the replicator has something to send. */
  nudge(): void {
    this.urgent = true;
    this.callbacks.push(() => undefined);
    this.schedule();
  }

  /** What collected while a write ran goes out now (unless the store is failing: the retry timer does it). */
  private commitMore(): void {
    if (!this.failing && (this.collected > 0 || this.callbacks.length > 0)) void this.commit();
  }

  /** Writes everything pending, waiting out a running write first (shutdown). Stops early if the store fails. */
  async drain(): Promise<void> {
    for (;;) {
      this.urgent = true;
      await this.commit();
      if (this.failing) return;
      if (this.writesActive === 0 && this.collected === 0 && this.callbacks.length === 0 && !this.retry) return;
    }
  }
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

// Measured: a second write in flight gains nothing (LevelDB serializes writers) and makes batches smaller.
const MAX_WRITES_IN_FLIGHT = 1;

/** Key of an incoming QoS 2 identifier in StoreBatch. */
const incomingKey = (clientId: string, packetId: number): string => `${clientId}\u0000${packetId}`;

/** `older` with `newer`'s changes applied on top (newer wins per key). */
function mergeBatches(older: StoreBatch, newer: StoreBatch): StoreBatch {
  const merged = emptyBatch();
  for (const key of Object.keys(merged) as (keyof StoreBatch)[]) {
    const target = merged[key] as Map<string, unknown>;
    for (const [k, v] of older[key] as Map<string, unknown>) target.set(k, v);
    for (const [k, v] of newer[key] as Map<string, unknown>) target.set(k, v);
  }
  return merged;
}

const wallClock = (monotonic: number): number => (monotonic === 0 ? 0 : Date.now() + (monotonic - performance.now()));

export function toStoredMessage(message: Message): StoredMessage {
  return {
    topic: message.topic(),
    payload: message.payload(),
    qos: message.qos,
    retain: message.retain,
    forward: message.forward(),
    expiresAt: wallClock(message.expiresAt),
  };
}

export function toStoredSession(session: Session): StoredSession {
  const will = session.will;
  return {
    clientId: session.clientId,
    ...(session.ownerKnown ? { owner: session.owner ?? null } : {}),
    version: session.version,
    expiryInterval: session.expiryInterval,
    disconnectedAt: session.outlet ? 0 : Date.now() - (performance.now() - session.disconnectedAt),
    subscriptions: [...session.subscriptions.values()].map((s) => ({
      filter: s.filter,
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      subscriptionId: s.subscriptionId,
    })),
    will: will
      ? {
          topic: will.topic,
          payload: will.payload,
          qos: will.qos,
          retain: will.retain,
          forward: will.forward,
          expiresAt: 0,
          delaySeconds: will.props.willDelayInterval ?? 0,
          messageExpiryInterval: will.props.messageExpiryInterval,
        }
      : null,
  };
}

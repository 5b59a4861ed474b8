import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { Store, StoreBatch, StoredDelivery, StoredMessage, StoredSession, StoredState } from '../core/model/store.js';

/** Bumped (as the IndexedDB version) when the layout below changes; a newer database is refused. */
export const IDB_SCHEMA_VERSION = 1;

/**
 * One object store per kind of record, keyed so that IndexedDB's own key order is the order the
 * broker needs: deliveries by [clientId, seq], incoming QoS 2 identifiers by [clientId, packetId].
 */
interface ArborSchema extends DBSchema {
  sessions: { key: string; value: StoredSession };
  retained: { key: string; value: StoredMessage };
  messages: { key: string; value: StoredMessage };
  deliveries: { key: [string, number]; value: StoredDelivery };
  incomingQos2: { key: [string, number]; value: true };
}

const STORES = ['sessions', 'retained', 'messages', 'deliveries', 'incomingQos2'] as const;

export interface IdbStoreOptions {
  /**
   * 'strict' (default): a group commit counts as written once IndexedDB has flushed it to disk, so
   * QoS 1/2 acknowledgements survive a power cut. 'relaxed': once the browser has it — survives a
   * reload or a browser crash, not an operating system crash; group commits are much cheaper.
   */
  durability?: 'strict' | 'relaxed';
}

/** The database is from a newer ArborMQ, or IndexedDB cannot be opened here. */
export class IdbStoreOpenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'IdbStoreOpenError';
  }
}

/**
 * Broker state in IndexedDB (through `idb`): one record per session, retained topic, message body,
 * delivery and incoming QoS 2 identifier, so each change is a small write and each group commit is
 * one readwrite transaction over all five stores (atomic, as the Store contract asks).
 */
export class IdbStore implements Store {
  private db: IDBPDatabase<ArborSchema> | null = null;
  /** The browser closed the connection under us (storage cleared, quota eviction): reopen on the next write. */
  private terminated = false;
  private readonly durability: 'strict' | 'relaxed';

  constructor(
    readonly name = 'arbormq',
    options: IdbStoreOptions = {},
  ) {
    this.durability = options.durability ?? 'strict';
  }

  async open(): Promise<void> {
    if (typeof indexedDB === 'undefined') throw new IdbStoreOpenError('IndexedDB is not available in this context');
    try {
      this.db = await openDB<ArborSchema>(this.name, IDB_SCHEMA_VERSION, {
        upgrade(db) {
          for (const store of STORES) if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
        },
        terminated: () => {
          this.terminated = true;
        },
      });
      this.terminated = false;
    } catch (error) {
      if ((error as DOMException)?.name === 'VersionError') {
        throw new IdbStoreOpenError(
          `the IndexedDB database "${this.name}" was written by a newer ArborMQ (schema newer than ${IDB_SCHEMA_VERSION}); ` +
            'use that version, or another database name',
          { cause: error },
        );
      }
      throw new IdbStoreOpenError(`cannot open the IndexedDB database "${this.name}": ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }

  async load(): Promise<StoredState> {
    const db = this.database();
    const tx = db.transaction(STORES, 'readonly');
    const [sessions, retained, messageKeys, messageValues, deliveries, incomingKeys] = await Promise.all([
      tx.objectStore('sessions').getAll(),
      tx.objectStore('retained').getAll(),
      tx.objectStore('messages').getAllKeys(),
      tx.objectStore('messages').getAll(),
      // Key order is [clientId, seq]: the per-session sequence order the broker restores in.
      tx.objectStore('deliveries').getAll(),
      tx.objectStore('incomingQos2').getAllKeys(),
      tx.done,
    ]);
    const messages = new Map<string, StoredMessage>();
    for (let i = 0; i < messageKeys.length; i++) messages.set(messageKeys[i]!, messageValues[i]!);
    const incomingQos2 = new Map<string, number[]>();
    for (const [clientId, packetId] of incomingKeys) (incomingQos2.get(clientId) ?? incomingQos2.set(clientId, []).get(clientId)!).push(packetId);
    // A browser broker is never a cluster node, the only writer of marks: none are stored here.
    return { sessions, retained, messages, deliveries, incomingQos2, marks: new Map() };
  }

  async write(batch: StoreBatch): Promise<void> {
    if (this.terminated) await this.open();
    const tx = this.database().transaction(STORES, 'readwrite', { durability: this.durability });
    const ops: Promise<unknown>[] = [];
    const sessions = tx.objectStore('sessions');
    for (const [key, value] of batch.sessions) ops.push(value === null ? sessions.delete(key) : sessions.put(value, key));
    const retained = tx.objectStore('retained');
    for (const [key, value] of batch.retained) ops.push(value === null ? retained.delete(key) : retained.put(compactMessage(value), key));
    const messages = tx.objectStore('messages');
    for (const [key, value] of batch.messages) ops.push(value === null ? messages.delete(key) : messages.put(compactMessage(value), key));
    const deliveries = tx.objectStore('deliveries');
    for (const [{ clientId, seq }, value] of batch.deliveries) {
      const k: [string, number] = [clientId, seq];
      ops.push(value === null ? deliveries.delete(k) : deliveries.put(value, k));
    }
    const incoming = tx.objectStore('incomingQos2');
    for (const [key, value] of batch.incomingQos2) {
      const k = splitKey(key);
      ops.push(value === null ? incoming.delete(k) : incoming.put(true, k));
    }
    // Every request's promise is awaited too, so a failing one does not surface as an unhandled rejection.
    await Promise.all([...ops, tx.done]);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
  }

  private database(): IDBPDatabase<ArborSchema> {
    if (!this.db) throw new Error('the IndexedDB store is not open');
    return this.db;
  }
}

/** Incoming QoS 2 keys are `${clientId}\0${packetId}`; a client identifier never contains U+0000 [MQTT-1.5.4-2]. */
function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('\u0000');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

/** Structured clone stores a view's whole ArrayBuffer: keep only the bytes that belong to the message. */
function compactMessage(m: StoredMessage): StoredMessage {
  const payload = tight(m.payload);
  const forward = m.forward && tight(m.forward);
  return payload === m.payload && forward === m.forward ? m : { ...m, payload, forward };
}

const tight = (u: Uint8Array): Uint8Array => (u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u : u.slice());

import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { bySessionAndSeq, type Store, type StoreBatch, type StoredDelivery, type StoredMessage, type StoredSession, type StoredState } from '../core/store.js';

/** Bumped when the layout below changes; a database from a newer version is refused. */
export const SCHEMA_VERSION = 2;

const SCHEMA_KEY = '!meta!schema';
const SESSION = 's!';
const RETAINED = 'r!';
const MESSAGE = 'm!';
const DELIVERY = 'd!';
const INCOMING = 'q!';

/** The database is missing, corrupt, locked, or from a newer version: start-up stops with this. */
export class StoreOpenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}

export interface LevelStoreOptions {
  /**
   * 'sync' (default): each group commit is fsync'ed before QoS 1/2 are acknowledged — nothing
   * acknowledged is lost even to a power cut. 'os': written to the operating system without fsync —
   * survives a crash of the broker (kill -9) but a power cut or kernel crash may lose the last
   * moments of acknowledged messages.
   */
  durability?: 'sync' | 'os';
}

const EMPTY = new Uint8Array(0);

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Broker state in LevelDB (`level`, classic-level on Node): one key per session, retained topic, message body,
 * delivery and incoming QoS 2 identifier, so every change is a small incremental write and a group
 * commit is one atomic LevelDB batch.
 */
export class LevelStore implements Store {
  private readonly db: Level<string, Uint8Array>;
  private readonly sync: boolean;
  /** LevelDB refuses every write after an I/O error until it is reopened. */
  private needsReopen = false;

  constructor(
    readonly location: string,
    options: LevelStoreOptions = {},
  ) {
    // A large memtable: most records live for milliseconds (put, then deleted on PUBACK); flushing
    // them to level-0 files every 4 MiB (the default) stalls writes on compaction.
    this.db = new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view', writeBufferSize: 64 * 1024 * 1024 });
    this.sync = (options.durability ?? 'sync') === 'sync';
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.location, { recursive: true });
      await this.db.open();
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause ?? (error as Error);
      throw new StoreOpenError(
        `cannot open the database at ${this.location}: ${cause.message}. ` +
          'If another arbormq uses this data directory, stop it first. If the database is corrupt, move the ' +
          'directory aside and start with an empty one, or try `arbormq repair --data-dir <dir>` ' +
          "(LevelDB's repair) to recover what it can.",
        { cause: error },
      );
    }
    const stored = await this.db.get(SCHEMA_KEY);
    if (stored === undefined) {
      await this.db.put(SCHEMA_KEY, utf8.encode(String(SCHEMA_VERSION)), { sync: this.sync });
      return;
    }
    const version = Number(utf8Decoder.decode(stored));
    if (!(version <= SCHEMA_VERSION)) {
      await this.db.close();
      throw new StoreOpenError(
        `the database at ${this.location} has schema version ${utf8Decoder.decode(stored)}, written by a newer ArborMQ; ` +
          `this version reads schema ${SCHEMA_VERSION} and older. Run the newer arbormq, or start with another data directory.`,
      );
    }
  }

  async load(): Promise<StoredState> {
    const state: StoredState = { sessions: [], retained: [], messages: new Map(), deliveries: [], incomingQos2: new Map() };
    for await (const [key, value] of this.db.iterator()) {
      const prefix = key.slice(0, 2);
      const rest = key.slice(2);
      if (prefix === SESSION) state.sessions.push(decodeSession(value));
      else if (prefix === RETAINED) state.retained.push(decodeMessage(value));
      else if (prefix === MESSAGE) state.messages.set(rest, decodeMessage(value));
      else if (prefix === DELIVERY) {
        const [clientId, seq] = splitKey(rest);
        state.deliveries.push(decodeDelivery(value, clientId, seq));
      }
      else if (prefix === INCOMING) {
        const [clientId, packetId] = splitKey(rest);
        (state.incomingQos2.get(clientId) ?? state.incomingQos2.set(clientId, []).get(clientId)!).push(packetId);
      }
    }
    state.deliveries.sort(bySessionAndSeq);
    return state;
  }

  async write(batch: StoreBatch): Promise<void> {
    if (this.needsReopen) {
      await this.db.close().catch(() => undefined);
      await this.db.open();
      this.needsReopen = false;
    }
    // A chained batch: about a third of the per-operation cost of db.batch([...]) (measured).
    const b = this.db.batch();
    const apply = (key: string, value: Uint8Array | null): void => {
      if (value) b.put(key, value);
      else b.del(key);
    };
    for (const [clientId, session] of batch.sessions) apply(SESSION + clientId, session && encodeSession(session));
    for (const [topic, message] of batch.retained) apply(RETAINED + topic, message && encodeMessage(message));
    for (const [id, message] of batch.messages) apply(MESSAGE + id, message && encodeMessage(message));
    for (const [key, delivery] of batch.deliveries) {
      const [clientId, seq] = splitKey(key);
      apply(DELIVERY + clientId + '\u0000' + seq.toString(16).padStart(13, '0'), delivery && encodeDelivery(delivery));
    }
    for (const [key, present] of batch.incomingQos2) apply(INCOMING + key, present ? EMPTY : null);
    try {
      await b.write({ sync: this.sync });
    } catch (error) {
      this.needsReopen = true;
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /** LevelDB's own repair of a damaged database (run with the broker stopped). */
  static async repair(location: string): Promise<void> {
    await (Level as unknown as { repair(location: string): Promise<void> }).repair(location);
  }
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('\u0000');
  const tail = key.slice(at + 1);
  return [key.slice(0, at), /^[0-9a-f]{13}$/.test(tail) ? parseInt(tail, 16) : Number(tail)];
}

/** [u32 header length][header JSON][payload]: the payload stays binary. */
function encodeMessage(m: StoredMessage): Uint8Array {
  const header = utf8.encode(
    JSON.stringify({ t: m.topic, q: m.qos, r: m.retain, e: m.expiresAt, f: m.forward ? toBase64(m.forward) : null }),
  );
  const out = new Uint8Array(4 + header.length + m.payload.length);
  new DataView(out.buffer).setUint32(0, header.length);
  out.set(header, 4);
  out.set(m.payload, 4 + header.length);
  return out;
}

function decodeMessage(value: Uint8Array): StoredMessage {
  const length = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
  const h = JSON.parse(utf8Decoder.decode(value.subarray(4, 4 + length))) as { t: string; q: 0 | 1 | 2; r: boolean; e: number; f: string | null };
  return { topic: h.t, qos: h.q, retain: h.r, expiresAt: h.e, forward: h.f === null ? null : fromBase64(h.f), payload: value.slice(4 + length) };
}

const BINARY_DELIVERY = 0x02;
let scratch = new Uint8Array(4096);

/**
 * A delivery record's value. Schema 2 is binary — client id and sequence are in the key:
 *   [0x02][flags: qos | retain << 2 | released << 3 | inline body << 4][packet id u16]
 *   [message id length u8][message id][subscription id count u16][u32 each]
 *   and, with an inline body: [qos | retain << 2 | has forward << 3][expiresAt f64]
 *   [topic length u16][topic][forward length u32][forward]?[payload…].
 * Schema 1 values are JSON and always start with '{'.
 */
function encodeDelivery(d: StoredDelivery): Uint8Array {
  const m = d.message;
  const ids = d.subscriptionIds ?? [];
  const max = 7 + d.messageId.length + 4 * ids.length + (m ? 16 + 3 * m.topic.length + (m.forward?.length ?? 0) + m.payload.length : 0);
  if (scratch.length < max) scratch = new Uint8Array(Math.max(max, scratch.length * 2));
  const out = scratch;
  const view = new DataView(out.buffer);
  out[0] = BINARY_DELIVERY;
  out[1] = d.qos | (d.retain ? 4 : 0) | (d.released ? 8 : 0) | (m ? 16 : 0);
  view.setUint16(2, d.packetId);
  let pos = 4;
  out[pos++] = d.messageId.length;
  for (let i = 0; i < d.messageId.length; i++) out[pos++] = d.messageId.charCodeAt(i);
  view.setUint16(pos, ids.length);
  pos += 2;
  for (const id of ids) {
    view.setUint32(pos, id);
    pos += 4;
  }
  if (m) {
    out[pos++] = m.qos | (m.retain ? 4 : 0) | (m.forward ? 8 : 0);
    view.setFloat64(pos, m.expiresAt);
    pos += 8;
    const topic = utf8.encodeInto(m.topic, out.subarray(pos + 2));
    view.setUint16(pos, topic.written);
    pos += 2 + topic.written;
    if (m.forward) {
      view.setUint32(pos, m.forward.length);
      out.set(m.forward, pos + 4);
      pos += 4 + m.forward.length;
    }
    out.set(m.payload, pos);
    pos += m.payload.length;
  }
  return out.slice(0, pos);
}

function decodeDelivery(value: Uint8Array, clientId: string, seq: number): StoredDelivery {
  if (value[0] !== BINARY_DELIVERY) return JSON.parse(utf8Decoder.decode(value)) as StoredDelivery;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const flags = value[1]!;
  let pos = 4;
  const idLength = value[pos++]!;
  const messageId = String.fromCharCode(...value.subarray(pos, pos + idLength));
  pos += idLength;
  const count = view.getUint16(pos);
  pos += 2;
  const ids: number[] = [];
  for (let i = 0; i < count; i++, pos += 4) ids.push(view.getUint32(pos));
  const d: StoredDelivery = {
    clientId,
    seq,
    messageId,
    qos: (flags & 3) as 0 | 1 | 2,
    retain: (flags & 4) !== 0,
    subscriptionIds: count > 0 ? ids : null,
    packetId: view.getUint16(2),
    released: (flags & 8) !== 0,
  };
  if (flags & 16) {
    const mflags = value[pos++]!;
    const expiresAt = view.getFloat64(pos);
    pos += 8;
    const topicLength = view.getUint16(pos);
    const topic = utf8Decoder.decode(value.subarray(pos + 2, pos + 2 + topicLength));
    pos += 2 + topicLength;
    let forward: Uint8Array | null = null;
    if (mflags & 8) {
      const length = view.getUint32(pos);
      forward = value.slice(pos + 4, pos + 4 + length);
      pos += 4 + length;
    }
    d.message = { topic, qos: (mflags & 3) as 0 | 1 | 2, retain: (mflags & 4) !== 0, forward, expiresAt, payload: value.slice(pos) };
  }
  return d;
}

function encodeSession(s: StoredSession): Uint8Array {
  return utf8.encode(
    JSON.stringify(s, (_k, v: unknown) => (v instanceof Uint8Array ? { $b64: toBase64(v) } : v)),
  );
}

function decodeSession(value: Uint8Array): StoredSession {
  return JSON.parse(utf8Decoder.decode(value), (_k, v: unknown) =>
    v !== null && typeof v === 'object' && '$b64' in v ? fromBase64((v as { $b64: string }).$b64) : v,
  ) as StoredSession;
}

const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

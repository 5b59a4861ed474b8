import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import type { Logger } from '../core/model/options.js';
import { bySessionAndSeq, type DeliveryKey, emptyState, type Store, type StoreBatch, type StoredState } from '../core/model/store.js';
import { JournalFiles, type JournalDamage } from './journal-files.js';
import { type BatchKey, beginPut, endPut, JOURNAL, JOURNAL_END, Kind, KINDS, readJournal, Unfolded, writeDelete } from './level-journal.js';
import { ByteReader, ByteWriter, decodeDelivery, decodeMessage, decodeSession, encodeDelivery, encodeMessage, encodeSession } from './level-records.js';
import { describeDamage, forgetShutdown, inspectWriteAheadLogs, recordShutdown } from './level-wal.js';

/** Bumped when the layout below changes; a database from a newer version is refused. */
export const SCHEMA_VERSION = 5;

const SCHEMA_KEY = '!meta!schema';
/** The sequence number of the last journal record folded into keys (journal-files.ts). */
const FOLDED_KEY = '!meta!journal-folded';
const SESSION = 's!';
const RETAINED = 'r!';
const MESSAGE = 'm!';
const DELIVERY = 'd!';
const INCOMING = 'q!';
const MARK = 'k!';

/** The database is missing, corrupt, locked, or from a newer version: start-up stops with this. */
export class StoreOpenError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}

export interface LevelStoreOptions {
  /**
   * 'sync' (default): each group commit is on the disk before QoS 1/2 are acknowledged — nothing
   * acknowledged is lost even to a power cut. 'os': written to the operating system without waiting for the disk —
   * survives a crash of the broker (kill -9) but a power cut or kernel crash may lose the last
   * moments of acknowledged messages.
   */
  durability?: 'sync' | 'os';
  /** Journal bytes written before they are folded into per-record keys (see level-journal.ts). */
  foldBytes?: number;
  /**
   * A damaged write-ahead log (LevelDB would skip records of it, or it is shorter than at the last
   * shutdown) stops open() instead of being reported and accepted; nothing is changed then.
   */
  strict?: boolean;
  /** Where open() reports a damaged write-ahead log it accepts. */
  logger?: Logger;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

const FOLD_BYTES = 4 * 1024 * 1024;
const SLAB_BYTES = 1024 * 1024;
/** A slab with less room left than this is replaced before a record is written into it. */
const SLAB_MIN_ROOM = 64 * 1024;
/** A quiet broker folds at least this often, so a restart has little journal to replay. */
const FOLD_MS = 1000;

type Encoder<T> = (w: ByteWriter, value: T) => void;
const encodeNothing: Encoder<true> = () => {};
const encodeMark: Encoder<string> = (w, value) => w.string32(value);

/** The operations of one journal record, for applying to Unfolded once the record is durable. */
interface RecordOps {
  kinds: Kind[];
  keys: BatchKey[];
  /** Where each put's value starts and ends in the record; -1 for a delete. */
  starts: number[];
  ends: number[];
}

function clearOps(ops: RecordOps): RecordOps {
  ops.kinds.length = ops.keys.length = ops.starts.length = ops.ends.length = 0;
  return ops;
}

/** The LevelDB key of a StoreBatch key of that kind. */
function levelKey(kind: Kind, key: BatchKey): string {
  if (typeof key !== 'string') return DELIVERY + key.clientId + '\u0000' + key.seq.toString(16).padStart(13, '0');
  switch (kind) {
    case Kind.Session:
      return SESSION + key;
    case Kind.Retained:
      return RETAINED + key;
    case Kind.Message:
      return MESSAGE + key;
    case Kind.Mark:
      return MARK + key;
    default:
      return INCOMING + key;
  }
}

/**
 * Broker state in LevelDB (`level`, classic-level on Node): one key per session, retained topic,
 * message body, delivery and incoming QoS 2 identifier — reached through a journal: a group commit is
 * one record listing its changes, appended to a journal file (journal-files.ts) and folded into those
 * keys now and then (level-journal.ts) by a synced LevelDB write, after which the journal file it
 * filled may be written again.
 */
export class LevelStore implements Store {
  /** Made by open(): a Level opens itself as soon as it exists, and the write-ahead log is checked before. */
  private db!: Level<string, Uint8Array>;
  private journal!: JournalFiles;
  private readonly sync: boolean;
  private readonly foldBytes: number;
  private readonly strict: boolean;
  private readonly logger: Logger;
  /** LevelDB refuses every write after an I/O error until it is reopened. */
  private needsReopen = false;
  private unfolded = new Unfolded();
  private folding: Promise<void> | null = null;
  private lastFold = performance.now();
  /**
   * Journal records are written one after another into a slab: one allocation per slab instead of
   * one per commit (a record's own buffer, zeroed, cost 6 % of the main thread of a durable broker at
   * 10,000 msg/s), and the records kept until their fold hold their own bytes, not a buffer each.
   */
  private slab = new Uint8Array(SLAB_BYTES);
  private slabUsed = 0;
  /**
   * Per client, the highest delivery sequence number that may be a key in the folded state (after
   * load). A delivery above it is new: if it is deleted before the next fold it is simply forgotten.
   */
  private readonly foldedSeq = new Map<string, number>();
  private loaded = false;
  private spareOps: RecordOps | null = null;

  constructor(
    readonly location: string,
    options: LevelStoreOptions = {},
  ) {
    this.sync = (options.durability ?? 'sync') === 'sync';
    this.foldBytes = options.foldBytes ?? FOLD_BYTES;
    this.strict = options.strict ?? false;
    this.logger = options.logger ?? (() => undefined);
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.location, { recursive: true });
      await this.checkWriteAheadLog();
      // A large memtable: flushing it to level-0 files every 4 MiB (the default) stalls writes on compaction.
      this.db = new Level<string, Uint8Array>(this.location, { keyEncoding: 'utf8', valueEncoding: 'view', writeBufferSize: 64 * 1024 * 1024 });
      await this.db.open();
    } catch (error) {
      if (error instanceof StoreOpenError) throw error;
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
    const version = stored === undefined ? 0 : Number(utf8Decoder.decode(stored));
    if (!(version <= SCHEMA_VERSION)) {
      await this.db.close();
      throw new StoreOpenError(
        `the database at ${this.location} has schema version ${utf8Decoder.decode(stored)}, written by a newer ArborMQ; ` +
          `this version reads schema ${SCHEMA_VERSION} and older. Run the newer arbormq, or start with another data directory.`,
      );
    }
    // An older version would not read the journal: once we may write one, the database is ours.
    if (version < SCHEMA_VERSION) await this.db.put(SCHEMA_KEY, utf8.encode(String(SCHEMA_VERSION)), { sync: this.sync });
    try {
      await this.openJournal();
    } catch (error) {
      if (error instanceof StoreOpenError) throw error;
      await this.db.close().catch(() => undefined);
      throw new StoreOpenError(`cannot read the journal of the database at ${this.location}: ${(error as Error).message}. Nothing was changed.`, { cause: error });
    }
  }

  /**
   * LevelDB drops what it cannot read of its write-ahead log without a word; say what will be lost
   * (or, strict, refuse before LevelDB touches anything). See level-wal.ts.
   */
  private async checkWriteAheadLog(): Promise<void> {
    const damage = await inspectWriteAheadLogs(this.location);
    if (damage && this.strict) {
      throw new StoreOpenError(
        `the write-ahead log of the database at ${this.location} is damaged: ${describeDamage(damage)}. ` +
          'Opening the database would lose the changes in those bytes, so with strict (--strict, ARBORMQ_STRICT) arbormq ' +
          'does not start; nothing was changed. Copy the data directory aside to keep the evidence, then start without ' +
          'strict to accept the loss, or restore the directory from a backup.',
      );
    }
    // The sizes recorded at the last shutdown describe logs that LevelDB replaces as it opens.
    await forgetShutdown(this.location);
    if (!damage) return;
    this.logger('warn', 'the database may have lost changes: its write-ahead log is damaged, and LevelDB skips what it cannot read', {
      dataDir: this.location,
      lost: describeDamage(damage),
      droppedBytes: damage.dropped.reduce((n, d) => n + d.bytes, 0),
      truncatedBytes: damage.truncated.reduce((n, t) => n + t.bytes, 0),
    });
  }

  /**
   * What the journal held when the broker last stopped (cleanly or not) becomes keys, before anything
   * reads them: the records an older version kept in LevelDB (`j!` keys), then those of the journal
   * files above the last one folded.
   */
  private async openJournal(): Promise<void> {
    const net = new Map<string, Uint8Array | null>();
    const legacy: string[] = [];
    for await (const [key, value] of this.db.iterator({ gte: JOURNAL, lt: JOURNAL_END })) {
      legacy.push(key);
      readJournal(value, (kind, k, v) => net.set(levelKey(kind, k), v));
    }
    const stored = await this.db.get(FOLDED_KEY);
    const folded = stored === undefined ? 0 : Number(utf8Decoder.decode(stored));
    const { journal, records, damage } = await JournalFiles.open(this.location, this.sync, folded);
    this.journal = journal;
    if (damage) await this.journalDamaged(damage);
    for (const r of records) readJournal(r.bytes, (kind, k, v) => net.set(levelKey(kind, k), v));
    if (legacy.length === 0 && records.length === 0) return;
    const b = this.db.batch();
    for (const [key, value] of net) {
      if (value) b.put(key, value);
      else b.del(key);
    }
    for (const key of legacy) b.del(key);
    b.put(FOLDED_KEY, utf8.encode(String(records.at(-1)?.seq ?? folded)));
    // The journal files are written again from their start next: what they held must be durable here first.
    await b.write({ sync: true });
  }

  /** A damaged journal record with intact ones after it: its changes are lost. Strict refuses to start. */
  private async journalDamaged(damage: JournalDamage): Promise<void> {
    const what = `journal record(s) ${damage.missing.join(', ')} at byte ${damage.offset} of ${damage.file} fail their checksum`;
    if (this.strict) {
      await this.journal.close();
      await this.db.close();
      throw new StoreOpenError(
        `the journal of the database at ${this.location} is damaged: ${what}. Opening the database would lose those changes, ` +
          'so with strict (--strict, ARBORMQ_STRICT) arbormq does not start; nothing was changed. Copy the data directory ' +
          'aside to keep the evidence, then start without strict to accept the loss, or restore the directory from a backup.',
      );
    }
    this.logger('warn', 'the database lost changes: a record of its journal is damaged, and the records after it are applied without it', {
      dataDir: this.location,
      lost: what,
    });
  }

  async load(): Promise<StoredState> {
    await this.folding;
    if (!this.unfolded.empty) await this.fold();
    const state = emptyState();
    for await (const [key, value] of this.db.iterator()) {
      const prefix = key.slice(0, 2);
      const rest = key.slice(2);
      if (prefix === SESSION) state.sessions.push(decodeSession(value));
      else if (prefix === RETAINED) state.retained.push(decodeMessage(value));
      else if (prefix === MESSAGE) state.messages.set(rest, decodeMessage(value));
      else if (prefix === DELIVERY) {
        const [clientId, seq] = splitKey(rest);
        state.deliveries.push(decodeDelivery(value, clientId, seq));
        if (seq > (this.foldedSeq.get(clientId) ?? -1)) this.foldedSeq.set(clientId, seq);
      } else if (prefix === INCOMING) {
        const [clientId, packetId] = splitKey(rest);
        (state.incomingQos2.get(clientId) ?? state.incomingQos2.set(clientId, []).get(clientId)!).push(packetId);
      } else if (prefix === MARK) state.marks.set(rest, decodeMark(value));
    }
    state.deliveries.sort(bySessionAndSeq);
    this.loaded = true;
    return state;
  }

  async write(batch: StoreBatch): Promise<void> {
    if (this.slab.length - this.slabUsed < SLAB_MIN_ROOM) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const w = new ByteWriter(this.slab.subarray(this.slabUsed));
    // Reused from the last write unless that one is still running.
    const ops = this.spareOps ?? { kinds: [], keys: [], starts: [], ends: [] };
    this.spareOps = null;
    for (const [clientId, session] of batch.sessions) this.op(w, ops, Kind.Session, clientId, session, encodeSession);
    for (const [topic, message] of batch.retained) this.op(w, ops, Kind.Retained, topic, message, encodeMessage);
    for (const [id, message] of batch.messages) this.op(w, ops, Kind.Message, id, message, encodeMessage);
    // The hot loop, one of these per message: spelled out so that every call in it is monomorphic.
    for (const [key, delivery] of batch.deliveries) {
      if (delivery === null) this.delete(w, ops, Kind.Delivery, key);
      else {
        const start = this.beginPut(w, ops, Kind.Delivery, key);
        encodeDelivery(w, delivery);
        this.endPut(w, ops, start);
      }
    }
    for (const [key, present] of batch.incomingQos2) this.op(w, ops, Kind.Incoming, key, present, encodeNothing);
    for (const [name, value] of batch.marks) this.op(w, ops, Kind.Mark, name, value, encodeMark);
    const record = w.bytes.subarray(0, w.pos);
    // A record larger than the room left grew into a buffer of its own: the slab's room stays free.
    if (w.bytes.buffer === this.slab.buffer) this.slabUsed += (w.pos + 7) & ~7;
    try {
      await this.journal.append(record, (seq) => this.journaled(seq, record, ops));
    } catch (error) {
      this.spareOps = clearOps(ops);
      throw error;
    }
    if (!this.folding && (this.unfolded.bytes >= this.foldBytes || performance.now() - this.lastFold >= FOLD_MS)) {
      // A failed fold keeps its changes for the next one; the journal it would have replaced stays.
      this.folding = this.fold()
        .catch(() => undefined)
        .finally(() => {
          this.folding = null;
        });
    }
  }

  /** A journal record is durable: its changes join what the next fold writes. */
  private journaled(seq: number, record: Uint8Array, ops: RecordOps): void {
    const unfolded = this.unfolded;
    const index = unfolded.addRecord(seq, record);
    for (let i = 0; i < ops.keys.length; i++) {
      const changes = unfolded.kinds[ops.kinds[i]!]!;
      const start = ops.starts[i]!;
      if (start < 0) changes.delete(ops.keys[i]!);
      else {
        const key = ops.keys[i]!;
        changes.put(key, unfolded.span(index, start, ops.ends[i]!), typeof key !== 'string' && this.isNew(key));
      }
    }
    this.spareOps = clearOps(ops);
  }

  private op<T>(w: ByteWriter, ops: RecordOps, kind: Kind, key: BatchKey, value: T | null, encode: Encoder<T>): void {
    if (value === null) {
      this.delete(w, ops, kind, key);
      return;
    }
    const start = this.beginPut(w, ops, kind, key);
    encode(w, value);
    this.endPut(w, ops, start);
  }

  private beginPut(w: ByteWriter, ops: RecordOps, kind: Kind, key: BatchKey): number {
    ops.kinds.push(kind);
    ops.keys.push(key);
    return beginPut(w, kind, key);
  }

  private endPut(w: ByteWriter, ops: RecordOps, start: number): void {
    endPut(w, start);
    ops.starts.push(start);
    ops.ends.push(w.pos);
  }

  private delete(w: ByteWriter, ops: RecordOps, kind: Kind, key: BatchKey): void {
    ops.kinds.push(kind);
    ops.keys.push(key);
    ops.starts.push(-1);
    ops.ends.push(-1);
    writeDelete(w, kind, key);
  }

  /**
   * A delivery above its session's folded sequence numbers cannot be a key yet (known after load).
   * Asked when its record is durable, not when it is written: a fold may have taken the record
   * before it meanwhile.
   */
  private isNew(key: DeliveryKey): boolean {
    return this.loaded && key.seq > (this.foldedSeq.get(key.clientId) ?? -1);
  }

  /**
   * Writes the net effect of the journal so far as keys, with the number of the last record it
   * covers, atomically and synced: the journal file those records filled is written again after it.
   */
  private async fold(): Promise<void> {
    if (this.needsReopen) {
      await this.db.close().catch(() => undefined);
      await this.db.open();
      this.needsReopen = false;
    }
    const b = this.db.batch();
    let folded = this.unfolded;
    // Taken between two journal writes: every record before is in it, every one after goes to the other file.
    await this.journal.rotate(() => {
      folded = this.unfolded;
      this.unfolded = new Unfolded();
      this.lastFold = performance.now();
      for (const kind of KINDS) {
        for (const [key, change] of folded.kinds[kind]!.changes) {
          const value = folded.value(change);
          if (value) b.put(levelKey(kind, key), value);
          else b.del(levelKey(kind, key));
          if (change !== null && change >= 0 && typeof key !== 'string' && key.seq > (this.foldedSeq.get(key.clientId) ?? -1)) {
            this.foldedSeq.set(key.clientId, key.seq);
          }
        }
      }
      if (folded.lastSeq >= 0) b.put(FOLDED_KEY, utf8.encode(String(folded.lastSeq)));
    });
    try {
      await b.write({ sync: true });
    } catch (error) {
      this.unfolded.takeBack(folded);
      this.needsReopen = true;
      throw error;
    }
    this.journal.released();
  }

  async close(): Promise<void> {
    await this.folding;
    // If this fails the journal is still there, and the next open folds it.
    if (!this.unfolded.empty) await this.fold().catch(() => undefined);
    await this.journal.close();
    await this.db.close();
    await recordShutdown(this.location);
  }

  /** LevelDB's own repair of a damaged database (run with the broker stopped). */
  static async repair(location: string): Promise<void> {
    await (Level as unknown as { repair(location: string): Promise<void> }).repair(location);
    // Repair turns the logs into tables: the sizes recorded at shutdown no longer describe anything.
    await forgetShutdown(location);
  }
}

function decodeMark(value: Uint8Array): string {
  return new ByteReader(value).string32();
}

function splitKey(key: string): [string, number] {
  const at = key.lastIndexOf('\u0000');
  const tail = key.slice(at + 1);
  return [key.slice(0, at), /^[0-9a-f]{13}$/.test(tail) ? parseInt(tail, 16) : Number(tail)];
}

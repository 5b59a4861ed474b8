import type { DeliveryKey } from '../core/model/store.js';
import { ByteReader, type ByteWriter } from './level-records.js';

/**
 * The journal: each group commit is ONE record listing its puts and deletes (in the journal files,
 * journal-files.ts), instead of one LevelDB operation per change. Most changes live for milliseconds (a delivery put,
 * then deleted by the PUBACK of the next round trip); written key by key, each costs LevelDB a memtable
 * insert, a tombstone and compaction work. Now and then the journal is folded: the net effect of the
 * records since the last fold is written as ordinary keys and those records are deleted, in one atomic
 * batch, off the acknowledgement path — and a record created and deleted between two folds never
 * becomes a key at all.
 *
 * A journal record is a sequence of operations on the keys of a StoreBatch (not yet LevelDB keys):
 *   [kind << 1 | 1][key][u32 value length][value]   (put)
 *   [kind << 1    ][key]                            (delete)
 * where a key is [u32 length][UTF-8], and a delivery's is its client id and then its sequence (f64).
 */

/** A StoreBatch key: a string, or for a delivery its DeliveryKey. */
export type BatchKey = string | DeliveryKey;

/** Where schema 4 kept journal records, as LevelDB keys `j!{seq}`: read (and folded) when such a database is opened. */
export const JOURNAL = 'j!';
/** Just past every journal key in LevelDB's byte order. */
export const JOURNAL_END = 'j"';

/** What a journal operation changes: the StoreBatch map it came from. */
export const enum Kind {
  Session,
  Retained,
  Message,
  Delivery,
  Incoming,
  Mark,
}
export const KINDS = [Kind.Session, Kind.Retained, Kind.Message, Kind.Delivery, Kind.Incoming, Kind.Mark] as const;

/** Starts a put in a journal record; the value is written next, then `endPut(w, start)`. */
export function beginPut(w: ByteWriter, kind: Kind, key: BatchKey): number {
  w.u8((kind << 1) | 1);
  writeKey(w, key);
  return w.beginLength();
}

export function endPut(w: ByteWriter, start: number): void {
  w.endLength(start);
}

export function writeDelete(w: ByteWriter, kind: Kind, key: BatchKey): void {
  w.u8(kind << 1);
  writeKey(w, key);
}

function writeKey(w: ByteWriter, key: BatchKey): void {
  if (typeof key === 'string') {
    w.string32(key);
    return;
  }
  w.string32(key.clientId);
  w.f64(key.seq);
}

/** Calls `apply` for each operation of a journal record, in order; values are views into `record`. */
export function readJournal(record: Uint8Array, apply: (kind: Kind, key: BatchKey, value: Uint8Array | null) => void): void {
  const r = new ByteReader(record);
  while (!r.done) {
    const op = r.u8();
    const kind = (op >> 1) as Kind;
    const key: BatchKey = kind === Kind.Delivery ? { clientId: r.string32(), seq: r.f64() } : r.string32();
    apply(kind, key, op & 1 ? r.take(r.u32()) : null);
  }
}

/**
 * The net effect on one kind of key of the journal records written since the last fold, in the order
 * the keys were first changed. Per key: a span number (of the Unfolded holding it) ≥ 0 for a put of a
 * key that was not in the folded state when first put — deleting it just forgets it; -1 - span for a
 * put of a key that may be there; null to delete it at the fold.
 */
export class KindChanges {
  changes = new Map<BatchKey, number | null>();

  /** `isNew`: the key cannot be in the folded state unless this journal put it there since the last fold. */
  put(key: BatchKey, span: number, isNew: boolean): void {
    const was = this.changes.get(key);
    const fresh = was === undefined ? isNew : was !== null && was >= 0;
    this.changes.set(key, fresh ? span : -1 - span);
  }

  delete(key: BatchKey): void {
    const was = this.changes.get(key);
    if (was !== undefined && was !== null && was >= 0) this.changes.delete(key);
    else this.changes.set(key, null);
  }
}

/**
 * Everything written to the journal since the last fold: the changes per kind, the journal records
 * they are in, and where in them each put value lies (spans: record index, start, end) — so tracking a
 * put costs no object of its own.
 */
export class Unfolded {
  readonly kinds = KINDS.map(() => new KindChanges());
  /** The sequence number of the last journal record here; -1 for none. */
  lastSeq = -1;
  private readonly records: Uint8Array[] = [];
  private readonly spans: number[] = [];
  bytes = 0;

  /** Records a journal record that is now durable; returns its index for `span`. */
  addRecord(seq: number, record: Uint8Array): number {
    this.lastSeq = seq;
    this.bytes += record.length;
    return this.records.push(record) - 1;
  }

  span(record: number, start: number, end: number): number {
    return this.spans.push(record, start, end) / 3 - 1;
  }

  /** The value a change (as KindChanges keeps it) puts, or null for a delete. */
  value(change: number | null): Uint8Array | null {
    if (change === null) return null;
    const at = (change >= 0 ? change : -1 - change) * 3;
    return this.records[this.spans[at]!]!.subarray(this.spans[at + 1], this.spans[at + 2]);
  }

  get empty(): boolean {
    return this.lastSeq < 0 && this.kinds.every((k) => k.changes.size === 0);
  }

  /** After a failed fold: `older`'s changes before these (which are newer), so the next fold writes both. */
  takeBack(older: Unfolded): void {
    for (const kind of KINDS) {
      const mine = this.kinds[kind]!;
      const merged = new Map<BatchKey, number | null>();
      for (const [key, change] of older.kinds[kind]!.changes) {
        if (mine.changes.has(key)) continue;
        const value = older.value(change);
        const span = value && this.span(this.records.push(value) - 1, 0, value.length);
        merged.set(key, span === null ? null : change! >= 0 ? span : -1 - span);
      }
      for (const [key, change] of mine.changes) merged.set(key, change);
      mine.changes = merged;
    }
    this.lastSeq = Math.max(this.lastSeq, older.lastSeq);
    this.bytes += older.bytes;
  }
}

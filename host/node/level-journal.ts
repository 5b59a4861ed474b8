import { ByteReader, type ByteWriter } from './level-records.js';

/**
 * The journal: each group commit is ONE LevelDB record (`j!{seq}`) listing its puts and deletes,
 * instead of one LevelDB operation per change. Most changes live for milliseconds (a delivery put,
 * then deleted by the PUBACK of the next round trip); written key by key, each costs LevelDB a memtable
 * insert, a tombstone and compaction work. Now and then the journal is folded: the net effect of the
 * records since the last fold is written as ordinary keys and those records are deleted, in one atomic
 * batch, off the acknowledgement path — and a record created and deleted between two folds never
 * becomes a key at all.
 *
 * A journal record is a sequence of operations on the keys of a StoreBatch (not yet LevelDB keys):
 *   [kind << 1 | 1][u32 key length][key][u32 value length][value]   (put)
 *   [kind << 1    ][u32 key length][key]                            (delete)
 */

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
}
export const KINDS = [Kind.Session, Kind.Retained, Kind.Message, Kind.Delivery, Kind.Incoming] as const;

/** Journal keys sort by sequence number: fixed-width hex. */
export const journalKey = (seq: number): string => JOURNAL + seq.toString(16).padStart(12, '0');

export const journalSeq = (key: string): number => parseInt(key.slice(JOURNAL.length), 16);

/** Starts a put in a journal record; the value is written next, then `endPut(w, start)`. */
export function beginPut(w: ByteWriter, kind: Kind, key: string): number {
  w.u8((kind << 1) | 1);
  w.string32(key);
  return w.beginLength();
}

export function endPut(w: ByteWriter, start: number): void {
  w.endLength(start);
}

export function writeDelete(w: ByteWriter, kind: Kind, key: string): void {
  w.u8(kind << 1);
  w.string32(key);
}

/** Calls `apply` for each operation of a journal record, in order; values are views into `record`. */
export function readJournal(record: Uint8Array, apply: (kind: Kind, key: string, value: Uint8Array | null) => void): void {
  const r = new ByteReader(record);
  while (!r.done) {
    const op = r.u8();
    const key = r.string32();
    apply((op >> 1) as Kind, key, op & 1 ? r.take(r.u32()) : null);
  }
}

/**
 * The net effect on one kind of key of the journal records written since the last fold, as span
 * numbers of the Unfolded holding it. `fresh` holds keys that were not in the folded state when first
 * put: deleting one just forgets it. `changed` holds keys that may be there (null: delete it at the fold).
 */
export class KindChanges {
  readonly fresh = new Map<string, number>();
  readonly changed = new Map<string, number | null>();

  /** `isNew`: the key cannot be in the folded state unless this journal put it there since the last fold. */
  put(key: string, span: number, isNew: boolean): void {
    // A new key cannot be in `changed`: what decides newness only grows, at folds, which empty both maps.
    if (isNew || this.fresh.has(key)) this.fresh.set(key, span);
    else this.changed.set(key, span);
  }

  delete(key: string): void {
    if (!this.fresh.delete(key)) this.changed.set(key, null);
  }

  get size(): number {
    return this.fresh.size + this.changed.size;
  }
}

/**
 * Everything written to the journal since the last fold: the changes per kind, the journal records
 * they are in, and where in them each put value lies (spans: record index, start, end) — so tracking a
 * put costs no object of its own.
 */
export class Unfolded {
  readonly kinds = KINDS.map(() => new KindChanges());
  readonly journalKeys: string[] = [];
  private readonly records: Uint8Array[] = [];
  private readonly spans: number[] = [];
  bytes = 0;

  /** Records a journal record that is now durable; returns its index for `span`. */
  addRecord(key: string, record: Uint8Array): number {
    this.journalKeys.push(key);
    this.bytes += record.length;
    return this.records.push(record) - 1;
  }

  span(record: number, start: number, end: number): number {
    return this.spans.push(record, start, end) / 3 - 1;
  }

  value(span: number): Uint8Array {
    const at = span * 3;
    return this.records[this.spans[at]!]!.subarray(this.spans[at + 1], this.spans[at + 2]);
  }

  get empty(): boolean {
    return this.journalKeys.length === 0 && this.kinds.every((k) => k.size === 0);
  }

  /** After a failed fold: `older`'s changes under these (which are newer), so the next fold writes both. */
  takeBack(older: Unfolded): void {
    const copy = (span: number): number => {
      const value = older.value(span);
      return this.span(this.records.push(value) - 1, 0, value.length);
    };
    for (const kind of KINDS) {
      const mine = this.kinds[kind]!;
      const theirs = older.kinds[kind]!;
      for (const [key, span] of theirs.fresh) if (!mine.fresh.has(key) && !mine.changed.has(key)) mine.fresh.set(key, copy(span));
      for (const [key, span] of theirs.changed) if (!mine.fresh.has(key) && !mine.changed.has(key)) mine.changed.set(key, span === null ? null : copy(span));
    }
    for (const key of older.journalKeys) this.journalKeys.push(key);
    this.bytes += older.bytes;
  }
}

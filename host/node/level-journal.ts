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
 * The net effect on one kind of key of the journal records written since the last fold. `fresh` holds
 * keys that were not in the folded state when first put: deleting one just forgets it. `changed` holds
 * keys that may be there (null: delete it at the fold).
 */
export class KindChanges {
  readonly fresh = new Map<string, Uint8Array>();
  readonly changed = new Map<string, Uint8Array | null>();

  /** `isNew`: the key cannot be in the folded state unless this journal put it there since the last fold. */
  put(key: string, value: Uint8Array, isNew: boolean): void {
    if (isNew ? !this.changed.has(key) : this.fresh.has(key)) this.fresh.set(key, value);
    else this.changed.set(key, value);
  }

  delete(key: string): void {
    if (!this.fresh.delete(key)) this.changed.set(key, null);
  }

  get size(): number {
    return this.fresh.size + this.changed.size;
  }

  /** After a failed fold: `older`'s changes under these (which are newer). */
  takeBack(older: KindChanges): void {
    for (const [key, value] of older.fresh) if (!this.fresh.has(key) && !this.changed.has(key)) this.fresh.set(key, value);
    for (const [key, value] of older.changed) if (!this.fresh.has(key) && !this.changed.has(key)) this.changed.set(key, value);
  }
}

/** Everything written to the journal since the last fold: the changes per kind and the records holding them. */
export class Unfolded {
  readonly kinds = KINDS.map(() => new KindChanges());
  readonly journalKeys: string[] = [];
  bytes = 0;

  get empty(): boolean {
    return this.journalKeys.length === 0 && this.kinds.every((k) => k.size === 0);
  }

  takeBack(older: Unfolded): void {
    for (const kind of KINDS) this.kinds[kind]!.takeBack(older.kinds[kind]!);
    for (const key of older.journalKeys) this.journalKeys.push(key);
    this.bytes += older.bytes;
  }
}

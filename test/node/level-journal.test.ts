import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { beginPut, endPut, Kind, readJournal, Unfolded, writeDelete, type BatchKey } from '../../host/node/level-journal.js';
import { ByteWriter } from '../../host/node/level-records.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

let nextSeq = 1;

/** Tracks `value` under `key` in `u` as a write of one journal record (the next one written) would. */
function put(u: Unfolded, kind: Kind, key: BatchKey, value: Uint8Array, isNew: boolean): void {
  const record = u.addRecord(nextSeq++, value);
  u.kinds[kind]!.put(key, u.span(record, 0, value.length), isNew);
}

/** What a fold of `u` would write, in order: [key, value or null for a delete]. */
function folded(u: Unfolded, kind: Kind): [BatchKey, number[] | null][] {
  return [...u.kinds[kind]!.changes].map(([key, change]) => {
    const value = u.value(change);
    return [key, value && [...value]];
  });
}

describe('LevelStore journal records and what a fold writes', () => {
  it('reads back the operations of a record in order, deliveries keyed by client id and sequence', () => {
    const w = new ByteWriter(16);
    let start = beginPut(w, Kind.Delivery, { clientId: 'cliént', seq: 2 ** 40 + 3 });
    w.raw(bytes(1, 2, 3));
    endPut(w, start);
    writeDelete(w, Kind.Incoming, 'c\u00007');
    start = beginPut(w, Kind.Retained, 'a/b');
    endPut(w, start);
    const ops: [Kind, BatchKey, number[] | null][] = [];
    readJournal(w.bytes.subarray(0, w.pos), (kind, key, value) => ops.push([kind, key, value && [...value]]));
    assert.deepEqual(ops, [
      [Kind.Delivery, { clientId: 'cliént', seq: 2 ** 40 + 3 }, [1, 2, 3]],
      [Kind.Incoming, 'c\u00007', null],
      [Kind.Retained, 'a/b', []],
    ]);
  });

  it('forgets a new key deleted before the fold, and keeps the delete of a key the folded state may hold', () => {
    const u = new Unfolded();
    const fresh = { clientId: 'c', seq: 9 };
    const old = { clientId: 'c', seq: 1 };
    put(u, Kind.Delivery, fresh, bytes(9), true);
    put(u, Kind.Delivery, old, bytes(1), false);
    put(u, Kind.Delivery, fresh, bytes(10), false); // rewritten (packet id): still new since the last fold
    u.kinds[Kind.Delivery]!.delete(fresh);
    u.kinds[Kind.Delivery]!.delete(old);
    assert.deepEqual(folded(u, Kind.Delivery), [[old, null]]);
  });

  it('after a failed fold, its changes come back ahead of the newer ones, values intact, newer ones winning', () => {
    const older = new Unfolded();
    put(older, Kind.Session, 'a', bytes(1), false);
    put(older, Kind.Session, 'b', bytes(2), false);
    older.kinds[Kind.Session]!.delete('c');
    put(older, Kind.Delivery, { clientId: 'x', seq: 5 }, bytes(5), true);
    const newer = new Unfolded();
    put(newer, Kind.Session, 'b', bytes(20), false);
    put(newer, Kind.Session, 'd', bytes(4), false);
    const last = newer.lastSeq;
    newer.takeBack(older);
    assert.deepEqual(folded(newer, Kind.Session), [
      ['a', [1]],
      ['c', null],
      ['b', [20]],
      ['d', [4]],
    ]);
    assert.deepEqual(folded(newer, Kind.Delivery), [[{ clientId: 'x', seq: 5 }, [5]]]);
    assert.equal(newer.lastSeq, last, 'the next fold covers the journal up to the newer record');
    // A key that was new before the failed fold is still new: deleting it forgets it.
    newer.kinds[Kind.Delivery]!.delete([...newer.kinds[Kind.Delivery]!.changes.keys()][0]!);
    assert.deepEqual(folded(newer, Kind.Delivery), []);
  });
});

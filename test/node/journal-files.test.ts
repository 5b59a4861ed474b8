import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JOURNAL_FILES, JournalFiles, scanJournal } from '../../host/node/journal-files.js';
import { emptyBatch } from '../../host/core/model/store.js';
import { LevelStore, StoreOpenError } from '../../host/node/level-store.js';

const record = (n: number): Uint8Array => Uint8Array.from({ length: 20 + (n % 7) }, (_, i) => (n * 31 + i) & 0xff);

/** Appends records n..m-1 (record(n) as bytes), returning the sequence numbers they were given. */
async function appendAll(journal: JournalFiles, from: number, to: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let n = from; n < to; n++) await journal.append(record(n), (seq) => seqs.push(seq));
  return seqs;
}

/** Flips the bits of `mask` in one byte of `file`, at the offset `at` finds in its content. */
async function flip(file: string, at: (bytes: Buffer) => number, mask: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[at(bytes)]! ^= mask;
  await writeFile(file, bytes);
}

const contents = (records: { bytes: Uint8Array }[]): number[][] => records.map((r) => [...r.bytes]);
const expected = (from: number, to: number): number[][] => Array.from({ length: to - from }, (_, i) => [...record(from + i)]);

describe('LevelStore journal files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arbormq-journal-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('numbers records one by one and reads back, in order across both files, those above the folded number', async () => {
    const at = join(dir, 'order');
    const { journal } = await JournalFiles.open(await mkdirp(at), true, 0);
    assert.deepEqual(await appendAll(journal, 0, 5), [1, 2, 3, 4, 5]);
    let taken = 0;
    await journal.rotate(() => (taken = 5));
    assert.equal(taken, 5, 'the fold takes its records once the five are durable');
    assert.deepEqual(await appendAll(journal, 5, 9), [6, 7, 8, 9]);
    await journal.close();
    const reopened = await JournalFiles.open(at, true, 3);
    assert.deepEqual(contents(reopened.records), expected(3, 9), 'records 4 to 9, though 4 and 5 are in the first file and 6 to 9 in the second');
    assert.deepEqual(reopened.records.map((r) => r.seq), [4, 5, 6, 7, 8, 9]);
    assert.equal(reopened.damage, null);
    await reopened.journal.close();
  });

  it('writes a file again from its start once released, and the records of its last use left past the new ones are not read back', async () => {
    const at = await mkdirp(join(dir, 'reuse'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 10); // 1..10 in file 0
    await journal.rotate(() => undefined);
    journal.released(); // the fold of 1..10 is durable
    await appendAll(journal, 10, 12); // 11, 12 in file 1
    await journal.rotate(() => undefined);
    journal.released(); // the fold of 11, 12 is durable
    const size = (await stat(join(at, JOURNAL_FILES[0]))).size;
    await appendAll(journal, 12, 14); // 13, 14 over the start of file 0
    await journal.close();
    assert.equal((await stat(join(at, JOURNAL_FILES[0]))).size, size, 'written over, not grown');
    const file0 = scanJournal(await readFile(join(at, JOURNAL_FILES[0]))).records.map((r) => r.seq);
    assert.deepEqual(file0.slice(0, 2), [13, 14], 'the new records at its start');
    const reopened = await JournalFiles.open(at, true, 12);
    assert.deepEqual(contents(reopened.records), expected(12, 14));
    assert.equal(reopened.damage, null, 'the rest of the last use is no damage');
    await reopened.journal.close();
  });

  it('keeps writing the same file while the other one holds records a failed fold did not fold', async () => {
    const at = await mkdirp(join(dir, 'failed-fold'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 3); // 1..3 in file 0
    await journal.rotate(() => undefined); // the fold of 1..3 fails: no released()
    await appendAll(journal, 3, 5); // 4, 5 in file 1
    await journal.rotate(() => undefined); // the next fold: file 0 still holds 1..3
    await appendAll(journal, 5, 7);
    await journal.close();
    const reopened = await JournalFiles.open(at, true, 0);
    assert.deepEqual(contents(reopened.records), expected(0, 7), 'nothing of 1..3 was written over');
    await reopened.journal.close();
  });

  it('does not read back a record cut short (a write the crash interrupted: never acknowledged), and writes the next one over it', async () => {
    const at = await mkdirp(join(dir, 'torn'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 4);
    await journal.close();
    const file = join(at, JOURNAL_FILES[0]);
    await truncate(file, (await stat(file)).size - 5);
    const reopened = await JournalFiles.open(at, true, 0);
    assert.deepEqual(contents(reopened.records), expected(0, 3));
    assert.equal(reopened.damage, null);
    assert.deepEqual(await appendAll(reopened.journal, 10, 11), [4], 'the next record takes the number of the one cut short');
    await reopened.journal.close();
  });

  it('reports a damaged record that intact ones follow, with the numbers lost, and reads on past it', async () => {
    const at = await mkdirp(join(dir, 'damaged'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 5);
    await journal.close();
    await flip(join(at, JOURNAL_FILES[0]), (bytes) => scanJournal(bytes).records[2]!.bytes.byteOffset - bytes.byteOffset + 3, 0x40);
    const reopened = await JournalFiles.open(at, true, 0);
    assert.deepEqual(reopened.damage && { file: reopened.damage.file, missing: reopened.damage.missing }, { file: JOURNAL_FILES[0], missing: [3] });
    assert.deepEqual(reopened.records.map((r) => r.seq), [1, 2, 4, 5]);
    await reopened.journal.close();
  });

  it('reports damage to the first record of a file too, and reads the records after it', async () => {
    const at = await mkdirp(join(dir, 'damaged-first'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 3); // 1..3 in file 0
    await journal.rotate(() => undefined);
    await appendAll(journal, 3, 6); // 4..6 in file 1, 4 first
    await journal.close();
    await flip(join(at, JOURNAL_FILES[1]), () => 16 + 2, 0x10);
    const reopened = await JournalFiles.open(at, true, 0);
    assert.deepEqual(reopened.damage, { file: JOURNAL_FILES[1], offset: 0, missing: [4] });
    assert.deepEqual(reopened.records.map((r) => r.seq), [1, 2, 3, 5, 6]);
    await reopened.journal.close();
  });

  it('takes a cut-short first record of a file written again for the end, not for damage, though older intact records follow it', async () => {
    const at = await mkdirp(join(dir, 'torn-first'));
    const { journal } = await JournalFiles.open(at, true, 0);
    await appendAll(journal, 0, 10); // 1..10 in file 0
    await journal.rotate(() => undefined);
    journal.released();
    await appendAll(journal, 10, 12); // 11, 12 in file 1
    await journal.rotate(() => undefined);
    journal.released();
    // 13 over the start of file 0, as long as 1 was: the record after its stated end is 2, intact.
    assert.deepEqual(await appendAll(journal, 14, 15), [13]);
    await journal.close();
    await flip(join(at, JOURNAL_FILES[0]), () => 16 + 3, 0x10);
    const reopened = await JournalFiles.open(at, true, 12);
    assert.equal(reopened.damage, null);
    assert.deepEqual(reopened.records, []);
    assert.deepEqual(await appendAll(reopened.journal, 20, 21), [13], 'the next record takes the number of the one cut short');
    await reopened.journal.close();
  });

  it('a LevelStore whose journal file cannot be read does not start, says why, and lets go of the database', async () => {
    const at = join(dir, 'unreadable');
    const store = new LevelStore(at);
    await store.open();
    await store.close();
    await rm(join(at, JOURNAL_FILES[1]));
    await mkdir(join(at, JOURNAL_FILES[1]));
    await assert.rejects(new LevelStore(at).open(), (e: unknown) => e instanceof StoreOpenError && /cannot read the journal of the database/.test(e.message) && /EISDIR/.test(e.message));
    await rm(join(at, JOURNAL_FILES[1]), { recursive: true });
    const again = new LevelStore(at);
    await again.open();
    await again.close();
  });

  it('a LevelStore with a damaged journal record warns and keeps the rest; with strict it does not start and changes nothing', async () => {
    const at = join(dir, 'store');
    // Killed before any fold: the journal alone holds the three writes.
    const store = new LevelStore(at);
    await store.open();
    await store.load();
    for (const name of ['a', 'b', 'c']) await store.write({ ...emptyBatch(), marks: new Map([[name, `${name}-value`]]) });
    const file = join(at, JOURNAL_FILES[0]);
    const bytes = await readFile(file);
    await store.close();
    const second = scanJournal(bytes).records[1]!;
    bytes[second.bytes.byteOffset - bytes.byteOffset + 1]! ^= 0x01;
    // What close() folded is undone for the test: the journal is all there is, as after a crash.
    await rm(at, { recursive: true });
    const fresh = new LevelStore(at);
    await fresh.open();
    await fresh.close();
    await writeFile(file, bytes);
    await assert.rejects(new LevelStore(at, { strict: true }).open(), (e: unknown) => e instanceof StoreOpenError && /journal record\(s\) 2 at byte \d+ of ARBORMQ-JOURNAL-0 fail their checksum/.test(e.message));
    assert.deepEqual(await readFile(file), bytes, 'strict changed nothing');
    const warnings: string[] = [];
    const lenient = new LevelStore(at, { logger: (level, msg, fields) => level === 'warn' && warnings.push(`${msg}: ${String(fields?.lost)}`) });
    await lenient.open();
    assert.deepEqual([...(await lenient.load()).marks].sort(), [['a', 'a-value'], ['c', 'c-value']]);
    assert.match(warnings.join('\n'), /lost changes: a record of its journal is damaged.*: journal record\(s\) 2 at byte/);
    await lenient.close();
  });
});

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}

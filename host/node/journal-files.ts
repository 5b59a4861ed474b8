import { constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closeDescriptor, openDescriptor, writeAt } from './descriptor-writes.js';
import { crc32c } from './level-wal.js';

/**
 * Where LevelStore's group commits become durable: two files of its data directory, used in turn.
 * A commit is one record appended to the current file — one `pwritev` on a descriptor opened
 * O_DSYNC at durability `sync`, so it returns once the record is on the disk. When the store folds
 * its journal into LevelDB keys (with a synced LevelDB write, off the acknowledgement path), the
 * other file becomes the current one and is written again from its start: after the first folds
 * the records overwrite blocks the file already has, so a commit changes no file size or block map
 * and the filesystem has no metadata to commit with it. LevelDB's own synced write, which this
 * replaces on the acknowledgement path, waited for its writer queue, a memtable insert and a log
 * that grows, and measured several times this one's 99th percentile on the benchmark machine.
 *
 * A record: [u32 length][u32 CRC-32C of the next 8 + length bytes][f64 sequence number][bytes].
 * Sequence numbers rise by one per record across both files; LevelDB keeps the highest one folded
 * (in the same batch as the keys it folded), so at start the records above it, in order, are what
 * the journal adds. A file written again keeps records of its last use past the new ones' end: all
 * of them were folded before it was reused, so their numbers are at most the folded one.
 */

const HEADER = 16;
export const JOURNAL_FILES = ['ARBORMQ-JOURNAL-0', 'ARBORMQ-JOURNAL-1'] as const;
const READ_WRITE = constants.O_RDWR | constants.O_CREAT;

export interface JournalRecord {
  seq: number;
  bytes: Uint8Array;
}

/** What opening found wrong: a record whose bytes do not match its CRC, with an intact record after it. */
export interface JournalDamage {
  file: string;
  offset: number;
  /** The sequence numbers missing from what follows the last folded record. */
  missing: number[];
}

export class JournalFiles {
  private current = 0;
  private offset = 0;
  /** The file not written to holds nothing unfolded: the next rotate may write it again. */
  private otherFree = true;
  private nextSeq: number;
  /** Every append and rotate runs after the one before: the file and offset are taken when it runs. */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fds: number[],
    nextSeq: number,
  ) {
    this.nextSeq = nextSeq;
  }

  /**
   * Opens both files (creating them) and reads the records numbered above `folded`, in order. The
   * caller folds them into LevelDB with `folded` raised to the last one before it appends.
   */
  static async open(dir: string, sync: boolean, folded: number): Promise<{ journal: JournalFiles; records: JournalRecord[]; damage: JournalDamage | null }> {
    const found: JournalRecord[] = [];
    /** Per file, where a damaged record lies that an intact one follows; and the file of each record found. */
    const damagedAt = new Map<string, number>();
    const fileOf = new Map<JournalRecord, string>();
    for (const name of JOURNAL_FILES) {
      const scan = scanJournal(await readFile(join(dir, name)).catch(absent));
      for (const r of scan.records) {
        if (r.seq <= folded) continue;
        found.push(r);
        fileOf.set(r, name);
      }
      if (scan.damagedAt >= 0) damagedAt.set(name, scan.damagedAt);
    }
    found.sort((a, b) => a.seq - b.seq);
    // The records after the folded one, up to the first gap — unless a damaged record right before the next one explains it.
    const records: JournalRecord[] = [];
    let damage: JournalDamage | null = null;
    let expected = folded + 1;
    for (const r of found) {
      if (r.seq !== expected) {
        const file = fileOf.get(r)!;
        const offset = damagedAt.get(file);
        if (offset === undefined) break;
        damage ??= { file, offset, missing: [] };
        for (let s = expected; s < r.seq; s++) damage.missing.push(s);
      }
      records.push(r);
      expected = r.seq + 1;
    }
    const fds: number[] = [];
    try {
      for (const name of JOURNAL_FILES) fds.push(await openDescriptor(join(dir, name), sync ? READ_WRITE | constants.O_DSYNC : READ_WRITE));
    } catch (error) {
      await Promise.all(fds.map(closeDescriptor));
      throw error;
    }
    return { journal: new JournalFiles(fds, expected), records, damage };
  }

  /**
   * Writes `bytes` as the next record; `durable(seq)` runs once it is on the disk, before anything
   * queued after it runs. A failed write numbers nothing and is overwritten by the next one.
   */
  append(bytes: Uint8Array, durable: (seq: number) => void): Promise<void> {
    const step = this.chain.then(() => this.write(bytes).then(durable));
    this.chain = step.catch(() => undefined);
    return step;
  }

  private write(bytes: Uint8Array): Promise<number> {
    const seq = this.nextSeq;
    const header = Buffer.allocUnsafe(HEADER);
    header.writeUInt32BE(bytes.length, 0);
    header.writeDoubleBE(seq, 8);
    header.writeUInt32BE(crc32c(bytes, 0, bytes.length, crc32c(header, 8, 8)), 4);
    const at = this.offset;
    const length = HEADER + bytes.length;
    return writeAt(this.fds[this.current]!, [header, bytes], at, length).then(() => {
      this.offset = at + length;
      this.nextSeq = seq + 1;
      return seq;
    });
  }

  /**
   * Runs `take` once every record appended before it is durable (and reported), and before any
   * appended after it is written. Those go to the start of the other file — unless that one still
   * holds records not yet folded (a fold failed): then they follow in this one.
   */
  rotate(take: () => void): Promise<void> {
    const step = this.chain.then(() => {
      take();
      if (!this.otherFree) return;
      this.current ^= 1;
      this.offset = 0;
      this.otherFree = false;
    });
    this.chain = step.catch(() => undefined);
    return step;
  }

  /** A fold is durable: every record before the last rotate is in LevelDB, so its file may be written again. */
  released(): void {
    this.otherFree = true;
  }

  async close(): Promise<void> {
    await this.chain;
    await Promise.all(this.fds.map(closeDescriptor));
  }
}

/** A file not made yet reads as empty; any other failure to read it stops the opening. */
function absent(error: NodeJS.ErrnoException): Buffer {
  if (error.code === 'ENOENT') return Buffer.alloc(0);
  throw error;
}

/**
 * The intact records of one file from its start. A record that fails its CRC ends the file (a write
 * cut off, or the end of what was last written over older records) — unless the record after its
 * stated length is intact and numbered next but one (or, for the file's first record, intact at all):
 * then it may be damage, reported as `damagedAt` (else -1), and the reading goes on after it. Opening
 * tells the two apart: damage leaves a gap among the records above the folded one; the older records
 * of a file written over (all folded) leave none.
 */
export function scanJournal(content: Buffer): { records: JournalRecord[]; damagedAt: number } {
  const records: JournalRecord[] = [];
  let damagedAt = -1;
  for (let at = 0; ; ) {
    const r = recordAt(content, at);
    if (r) {
      records.push(r.record);
      at = r.end;
      continue;
    }
    if (at + HEADER > content.length) return { records, damagedAt };
    const next = at + HEADER + content.readUInt32BE(at);
    const after = next <= content.length ? recordAt(content, next) : null;
    const last = records.at(-1)?.seq;
    if (!after || (last !== undefined && after.record.seq !== last + 2)) return { records, damagedAt };
    if (damagedAt < 0) damagedAt = at;
    at = next;
  }
}

function recordAt(content: Buffer, at: number): { record: JournalRecord; end: number } | null {
  if (at + HEADER > content.length) return null;
  const length = content.readUInt32BE(at);
  const end = at + HEADER + length;
  if (end > content.length || crc32c(content, at + HEADER, length, crc32c(content, at + 8, 8)) !== content.readUInt32BE(at + 4)) return null;
  return { record: { seq: content.readDoubleBE(at + 8), bytes: content.subarray(at + HEADER, end) }, end };
}

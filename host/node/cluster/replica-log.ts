import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { closeDescriptor, openDescriptor, truncateDescriptor, writeAt } from '../descriptor-writes.js';
import { crc32c } from '../level-wal.js';
import type { ReplicaLog } from './replica-store.js';

const READ_WRITE = constants.O_RDWR | constants.O_CREAT;
/**
 * Durability `sync` opens the log O_DSYNC: each write returns once its data is on the disk, as a
 * write then an fdatasync would — in one system call and one trip to the thread pool instead of two,
 * which measured about half the CPU and wall time per frame on the benchmark machine.
 */
const SYNCED = READ_WRITE | constants.O_DSYNC;

/** Each record: its length and the CRC-32C of its bytes (u32 big-endian each), then the bytes. */
const HEADER = 8;

/**
 * The replicas of one owner on disk: the owner's frames as they came, appended to one file — no
 * re-encoding, one synchronous write for every frame that came while the last one ran — and
 * from time to time replaced by one snapshot record of the state they add up to (a new file renamed
 * over the old one). A record cut short or damaged ends the log where it starts: it was being
 * written when the process or the machine stopped, so it was never acknowledged.
 */
export class FileReplicaLog implements ReplicaLog {
  /** Bytes of whole records: the next write goes there (over a write that failed half-way). */
  private size = 0;
  private fd: number | null = null;
  /** Every write runs after the last one. */
  private tail: Promise<void> = Promise.resolve();
  /** Records to append that wait for the running write: they go together in the next one. */
  private next: { records: Buffer[]; written: Promise<void> } | null = null;

  constructor(
    private readonly file: string,
    /** A write counts as done once it is on the disk (durability `sync`); else the page cache is trusted. */
    private readonly sync: boolean,
  ) {}

  private reopen(): Promise<number> {
    return openDescriptor(this.file, this.sync ? SYNCED : READ_WRITE);
  }

  async read(): Promise<Buffer[]> {
    await mkdir(dirname(this.file), { recursive: true });
    // A snapshot being written when the process stopped never replaced the log.
    await rm(`${this.file}.new`, { force: true });
    this.fd = await this.reopen();
    const content = await readFile(this.file);
    const records: Buffer[] = [];
    let at = 0;
    while (at + HEADER <= content.length) {
      const length = content.readUInt32BE(at);
      const end = at + HEADER + length;
      if (end > content.length || crc32c(content, at + HEADER, length) !== content.readUInt32BE(at + 4)) break;
      records.push(content.subarray(at + HEADER, end));
      at = end;
    }
    if (at < content.length) await truncateDescriptor(this.fd, at);
    this.size = at;
    return records;
  }

  get bytes(): number {
    return this.size;
  }

  append(record: Buffer): Promise<void> {
    if (!this.next) {
      const next: { records: Buffer[]; written: Promise<void> } = { records: [], written: Promise.resolve() };
      next.written = this.tail.then(() => {
        if (this.next === next) this.next = null;
        return this.write(next.records);
      });
      this.tail = next.written.catch(() => undefined);
      this.next = next;
    }
    this.next.records.push(record);
    return this.next.written;
  }

  replace(snapshot: () => Buffer): Promise<void> {
    this.next = null;
    const replaced = this.tail.then(() => this.rewrite(snapshot()));
    this.tail = replaced.catch(() => undefined);
    return replaced;
  }

  async close(): Promise<void> {
    await this.tail;
    if (this.fd !== null) await closeDescriptor(this.fd);
    this.fd = null;
  }

  private async write(records: Buffer[]): Promise<void> {
    const parts: Buffer[] = [];
    let length = 0;
    for (const record of records) {
      parts.push(header(record), record);
      length += HEADER + record.length;
    }
    // At the end of the whole records, not appended (O_APPEND): a write that failed half-way is written over.
    await writeAt(this.fd!, parts, this.size, length);
    this.size += length;
  }

  private async rewrite(snapshot: Buffer): Promise<void> {
    const fresh = `${this.file}.new`;
    const handle = await open(fresh, 'w');
    try {
      await handle.writev([header(snapshot), snapshot]);
      if (this.sync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(fresh, this.file);
    if (this.sync) {
      const dir = await open(dirname(this.file), 'r');
      await dir.sync().finally(() => dir.close());
    }
    if (this.fd !== null) await closeDescriptor(this.fd);
    this.fd = await this.reopen();
    this.size = HEADER + snapshot.length;
  }
}

function header(record: Buffer): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32BE(record.length, 0);
  h.writeUInt32BE(crc32c(record, 0, record.length), 4);
  return h;
}
